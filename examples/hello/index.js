'use strict';
// Handler mode: the worker owns the server on port 3000 and calls the handler this module exports.
// A change to greeting.js reaches this entry, so the worker swaps the handler: no restart, same pid.
const { greeting } = require('./greeting');

module.exports = (req, res) => {
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`${greeting()} (served by pid ${process.pid})\n`);
};
