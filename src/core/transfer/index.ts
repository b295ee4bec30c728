// Moving events between relays as JSONL dumps: import (the relay's rules, every signature verified) and export.
export { importEvents, noCounts, type BadLine, type ImportCounts, type ImportDeps } from './import-events.js';
export { exportEvents, exportFilterLimits } from './export-events.js';
