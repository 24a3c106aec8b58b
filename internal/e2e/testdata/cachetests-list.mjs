// Prints the http-cache-tests suite's test list as JSON: one object per test
// with its id, suite, name, kind (required, optimal or check), depends_on and
// browser_only, exactly as the suite's cli.mjs assembles it (tests/index.mjs
// plus surrogate-control.mjs). The Go test grades the client's results with
// these, as the suite's lib/display.mjs determineTestResult does.
// Usage: node cachetests-list.mjs PACKAGE_DIR
import path from 'path'
import { pathToFileURL } from 'url'

const dir = process.argv[2]
const load = async rel => (await import(pathToFileURL(path.join(dir, rel)).href)).default
const suites = await load('tests/index.mjs')
suites.push(await load('tests/surrogate-control.mjs'))
const out = []
for (const suite of suites) {
  for (const t of suite.tests) {
    out.push({
      id: t.id,
      suite: suite.name,
      name: t.name,
      kind: t.kind || 'required',
      depends_on: t.depends_on || [],
      browser_only: t.browser_only === true
    })
  }
}
console.log(JSON.stringify(out))
