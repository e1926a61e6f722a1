// Moved to test/support/session-test-helpers.ts. This re-export serves only
// test/unit/in-memory-table.spec.ts while it moves to test/storages/table/;
// delete it once that spec imports from test/support.
export { INT64_MAX, INT64_MIN } from '../../src/core/session-id';
export { modelKey } from '../support/session-test-helpers';
