// Runs hotdeploy itself under PM2: `pm2 start deploy/ecosystem.config.cjs && pm2 save`.
// The service embeds the local host agent, which drives this same PM2 daemon (PM2_HOME) to run the
// deployed apps, so hotdeploy and the apps it deploys show up side by side in `pm2 ls`.
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
