/**
 * Triggers besides the API: webhook routes (served by the API) and cron schedules (run by engine processes).
 *
 * @module
 */
export {
  type FireOutcome,
  type Schedule,
  ScheduleRunner,
  type ScheduleRunnerOptions,
  schedulesOf,
} from "./schedule_runner.ts";
export {
  kvScheduleStore,
  type ScheduleRecord,
  type ScheduleStore,
  type TickState,
} from "./schedule_store.ts";
export { triggerEnv } from "./trigger_env.ts";
export { WebhookInputError, type WebhookRoute, WebhookTable } from "./webhook_table.ts";
