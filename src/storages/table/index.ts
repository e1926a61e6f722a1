/** The compact session table, as the storages use it: the set, its tick length, and nothing of its insides. */
export { DEADLINE_SPAN_TICKS, tickLengthOf } from './deadline-ticks.js';
export { SessionTable, type LapsedHandler } from './session-table.js';
