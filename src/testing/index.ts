export { describeSessionStorage, ManualClock, RecordingSink } from './describe-session-storage.js';
export type { ConformanceOptions, ConformanceTestApi, SessionStorageFactory, SessionStorageTestOptions } from './describe-session-storage.js';
