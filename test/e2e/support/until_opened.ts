/** Retries an open whose streams or buckets may not be provisioned yet; its last error is the cause. */
export async function untilOpened<T>(open: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await open();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`not opened after ${timeoutMs} ms`, { cause: e });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
