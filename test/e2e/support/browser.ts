/**
 * The system Chromium (installed by scripts/setup.sh from the OS packages) driven by puppeteer-core: no
 * browser is downloaded. One browser per test file; each page records every request it makes.
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";

export const CHROMIUM = Deno.env.get("COMPOZY_CHROMIUM") ?? "/usr/bin/chromium";

export async function launchBrowser(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch (e) {
    throw new Error(`No Chromium at ${CHROMIUM}: run scripts/setup.sh (apt-get install chromium)`, {
      cause: e,
    });
  }
  return await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}

/**
 * Chromium, launched while `starting` (a `compozy dev`, say) starts: each takes seconds, mostly of waiting on
 * its own processes, so together they take about as long as the longer one. If either fails, the other is
 * closed (with `close` for what `starting` made) and the failure is thrown.
 */
export async function launchBrowserBeside<T>(
  starting: Promise<T>,
  close: (started: T) => Promise<unknown>,
): Promise<[T, Browser]> {
  const [started, browser] = await Promise.allSettled([starting, launchBrowser()]);
  if (started.status === "fulfilled" && browser.status === "fulfilled") return [started.value, browser.value];
  if (started.status === "fulfilled") await close(started.value);
  if (browser.status === "fulfilled") await browser.value.close();
  throw started.status === "rejected" ? started.reason : (browser as PromiseRejectedResult).reason;
}

export interface RecordedPage {
  page: Page;
  /** Every URL the page requested, in order. */
  requests: string[];
  /** Uncaught errors and console errors of the page. */
  errors: string[];
}

export async function recordedPage(browser: Browser, width = 1100, height = 800): Promise<RecordedPage> {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { page, requests, errors };
}

/** Sets an input's value the way typing does (an `input` event), replacing what it held. */
export async function fill(page: Page, selector: string, value: string): Promise<void> {
  await page.waitForSelector(selector);
  await page.$eval(selector, (el, v) => {
    (el as unknown as { value: string }).value = v as string;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

/** Waits until the text of `selector` contains `text`. */
export async function waitForText(
  page: Page,
  selector: string,
  text: string,
  timeout = 20_000,
): Promise<void> {
  try {
    // A string runs in the page, where `document` exists (this file is type-checked without the DOM lib).
    await page.waitForFunction(
      `[...document.querySelectorAll(${JSON.stringify(selector)})].some((el) => el.textContent.includes(${
        JSON.stringify(text)
      }))`,
      { timeout },
    );
  } catch (e) {
    const shown = await page.$$eval(selector, (els) => els.map((el) => el.textContent).join(" | "))
      .catch(() => "(none)");
    throw new Error(`'${text}' never appeared in ${selector}; it shows: ${shown}`, { cause: e });
  }
}
