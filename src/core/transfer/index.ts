// Moving events between relays as JSONL dumps: import (the relay's rules, every signature verified) and export.
export { importEvents, noCounts, type BadLine, type ImportCounts, type ImportDeps, type ImportOptions, type ImportSummary } from './import-events.js';
export { exportEvents, exportFilterLimits, type ExportOptions } from './export-events.js';
