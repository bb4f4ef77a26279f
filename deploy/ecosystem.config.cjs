// Runs hotdeploy itself under PM2: `pm2 start deploy/ecosystem.config.cjs && pm2 save`.
// The service embeds the local host agent, which runs the deployed apps under a PM2 daemon of its
// own, started with a clean environment in <data dir>/pm2: `PM2_HOME=/var/lib/hotdeploy/pm2 pm2 ls`.
// That daemon outlives a restart of hotdeploy, so the apps keep serving meanwhile.
'use strict';
const path = require('node:path');

module.exports = {
  apps: [
    {
      name: 'hotdeploy',
      // From a clone of the repository (npm ci && npm run build). Installed from npm instead:
      // script: 'hotdeploy', interpreter: 'none'.
      script: path.join(__dirname, '..', 'dist', 'services', 'cli', 'main.js'),
      args: 'serve',
      // One process: it owns the data directory and serialises each app's deployments in memory.
      instances: 1,
      exec_mode: 'fork',
      autorestart: true,
      max_restarts: 20,
      // Let an in-flight upload or deployment finish on `pm2 reload hotdeploy` (SIGINT, then SIGKILL).
      kill_timeout: 15000,
      // The shell's HOTDEPLOY_* variables (or deploy/hotdeploy.env, sourced) win over these defaults.
      env: {
        NODE_ENV: 'production',
        HOTDEPLOY_DATA_DIR: process.env.HOTDEPLOY_DATA_DIR ?? '/var/lib/hotdeploy',
        HOTDEPLOY_HOST: process.env.HOTDEPLOY_HOST ?? '0.0.0.0',
        HOTDEPLOY_PORT: process.env.HOTDEPLOY_PORT ?? '7070',
        HOTDEPLOY_KEEP: process.env.HOTDEPLOY_KEEP ?? '10',
      },
    },
  ],
};
