'use strict';
// The README's quick start edits this line, then pushes again: the update is applied hot.
exports.greeting = () => 'Hello from hotdeploy v1';
