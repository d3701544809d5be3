// Runs axe-core on each URL given, in headless Chromium at 1400 px and 390 px, and exits 1
// on any serious or critical violation. Needs `npm install axe-core puppeteer-core` (found
// through NODE_PATH) and CHROMIUM (the browser binary). Used by tests/it/page.rs.
const puppeteer = require("puppeteer-core");
const axe = require("axe-core");

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
    headless: true,
  });
  let serious = 0;
  try {
    for (const url of process.argv.slice(2)) {
      for (const width of [1400, 390]) {
        const page = await browser.newPage();
        await page.setViewport({ width, height: 900 });
        await page.goto(url, { waitUntil: "load" });
        await page.addScriptTag({ content: axe.source });
        const result = await page.evaluate(() => axe.run(document));
        for (const v of result.violations) {
          const bad = v.impact === "serious" || v.impact === "critical";
          if (bad) serious += 1;
          console.log(`${bad ? "FAIL" : "note"} ${url} @${width}px ${v.impact} ${v.id}: ${v.help} (${v.nodes.length} nodes)`);
          for (const n of v.nodes.slice(0, 3)) console.log(`    ${n.target.join(" ")}: ${n.failureSummary.replace(/\n/g, " ")}`);
        }
        console.log(`checked ${url} @${width}px: ${result.violations.length} violations, ${result.passes.length} rules passed`);
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(serious > 0 ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
