// The schedule concept's public surface: what the planner and the API validation import.
export {
  parseSchedule,
  ticksBetween,
  type ParseScheduleResult,
  type Schedule,
  type ScheduleError,
  type TickSpan,
} from './schedule.ts';
export { ScheduleCache, type ScheduleCacheOptions } from './cache.ts';
