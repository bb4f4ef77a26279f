// A hotdeploy host agent under PM2, on every machine past the first (issue 7):
//   HOTDEPLOY_NATS=nats://nats.internal:4222 HOTDEPLOY_AGENT_NAME=web-2 \
//     pm2 start deploy/agent.ecosystem.config.cjs && pm2 save
// The agent runs the deployed apps under a PM2 daemon of its own, started with a clean environment
// in <data dir>/pm2 (`PM2_HOME=<data dir>/pm2 pm2 ls`); if PM2 restarts the agent, the apps keep
// serving meanwhile, and the agent catches up from its durable consumer and the desired releases in
// the KV bucket.
// It needs the NATS credentials only, never the deploy service's HTTP tokens.
'use strict';
const path = require('node:path');

module.exports = {
  apps: [
    {
      name: 'hotdeploy-agent',
      // From a clone of the repository (npm ci && npm run build). Installed from npm instead:
      // script: 'hotdeploy', interpreter: 'none'.
      script: path.join(__dirname, '..', 'dist', 'services', 'cli', 'main.js'),
      args: 'agent',
      instances: 1,
      exec_mode: 'fork',
      autorestart: true,
      max_restarts: 20,
      // Let a command in hand (a reload with its trial start and health gate) finish on a restart.
      kill_timeout: 60000,
      env: {
        NODE_ENV: 'production',
        HOTDEPLOY_NATS: process.env.HOTDEPLOY_NATS ?? 'nats://127.0.0.1:4222',
        // Subject token, KV key and durable consumer name: letters, digits, - and _ only.
        HOTDEPLOY_AGENT_NAME: process.env.HOTDEPLOY_AGENT_NAME ?? require('node:os').hostname().replace(/[^A-Za-z0-9_-]/g, '-'),
        HOTDEPLOY_DATA_DIR: process.env.HOTDEPLOY_DATA_DIR ?? '/var/lib/hotdeploy-agent',
        // Credentials, when the NATS server asks for them (or use --nats-creds / --nats-nkey in args):
        ...(process.env.HOTDEPLOY_NATS_USER ? { HOTDEPLOY_NATS_USER: process.env.HOTDEPLOY_NATS_USER, HOTDEPLOY_NATS_PASS: process.env.HOTDEPLOY_NATS_PASS ?? '' } : {}),
        ...(process.env.HOTDEPLOY_NATS_TOKEN ? { HOTDEPLOY_NATS_TOKEN: process.env.HOTDEPLOY_NATS_TOKEN } : {}),
      },
    },
  ],
};
