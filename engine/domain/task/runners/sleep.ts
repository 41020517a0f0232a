/** `sleep`: a durable timer (a TaskResume held until due), so a parked execution wakes on time. */
import { parseDuration } from "../../duration.ts";
import type { TaskOf, TaskRunner } from "./types.ts";

export const sleepRunner: TaskRunner<TaskOf<"sleep">> = {
  async run({ driver, task, key, execId, attempt, scope, record }) {
    if (record?.status === "woken") return { ok: true, output: null };
    if (record?.status !== "waiting") {
      const due = Date.now() + parseDuration(task.duration);
      // The timer is stored before the wait is recorded: a recorded wait always has its wake-up.
      await driver.track(driver.services.timers.schedule(driver, key, execId, "timer", due, attempt));
      await driver.track(driver.services.events.waitingStarted(driver, key, execId, attempt, "", due));
    }
    await driver.waitFor(execId, { kind: "timer", taskId: key, attempt, scope });
    return { ok: true, output: null };
  },
};
