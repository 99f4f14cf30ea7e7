// Drives Debian's firefox-esr over WebDriver BiDi (puppeteer-core, which never downloads a browser) for
// tests/test_console_browsers.py: signs in through the form, opens each page it is given, waits for the page's own
// marker and for the network to settle, and answers on stdout, as JSON, what the test checks: each page's visible
// text, the keys the catalog lacked, and every console error and uncaught exception. Playwright cannot drive a stock
// Firefox (it needs its own patched build), so this is the one place the tests speak BiDi.
//
// Input on stdin: {firefox, url, username, password, language, width, height, textScript, overflowScript,
//                  screenshots, pages: [{name, path, ready}]}   (ready: a CSS selector; the scripts: expressions)
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: job.firefox,
  headless: true,
  extraPrefsFirefox: { "intl.accept_languages": job.language, "intl.locale.requested": job.language },
});
const errors = [];
const pages = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(10000);
  await page.setViewport({ width: job.width, height: job.height });
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  page.on("pageerror", (error) => errors.push(String(error)));

  await page.goto(`${job.url}/console/${job.pages[0].path}`);
  await page.locator("input[autocomplete=username]").fill(job.username);
  await page.locator("input[autocomplete=current-password]").fill(job.password);
  await page.keyboard.press("Enter");
  await page.locator("[data-testid=who]").wait();
  mkdirSync(job.screenshots, { recursive: true });

  for (const { name, path, ready } of job.pages) {
    await page.goto(`${job.url}/console/${path}`);
    try {
      await page.locator(ready).wait();
      await page.waitForNetworkIdle({ idleTime: 300 });
    } catch (error) {
      pages[name] = { failed: `${ready}: ${error.message}` };
      continue;
    }
    pages[name] = {
      text: await page.evaluate(job.textScript),
      overflow: await page.evaluate(job.overflowScript),
      missing: await page.evaluate("window.clarionMissingTranslations ?? []"),
      language: await page.evaluate("document.documentElement.lang"),
    };
    await page.screenshot({ path: join(job.screenshots, `firefox-${name}.png`), fullPage: true });
  }
} finally {
  const version = await browser.version();
  await browser.close();
  process.stdout.write(JSON.stringify({ version, pages, errors }));
}
