// What a browser fetches to show the first page, gzipped: the entry chunk and every chunk it
// imports statically (lazy routes excluded), from Vite's manifest. Fails above the budget.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const DIST = new URL('../dist/', import.meta.url).pathname
const BUDGET = 1.5 * 1024 * 1024 // bytes of gzipped JavaScript (issue 4)

const manifest = JSON.parse(readFileSync(join(DIST, '.vite/manifest.json'), 'utf8'))
const entry = Object.keys(manifest).find((key) => manifest[key].isEntry)
const js = new Set()
const css = new Set()
const visit = (key) => {
  const chunk = manifest[key]
  if (js.has(chunk.file)) return
  js.add(chunk.file)
  for (const file of chunk.css ?? []) css.add(file)
  for (const imported of chunk.imports ?? []) visit(imported)
}
visit(entry)

const gz = (file) => gzipSync(readFileSync(join(DIST, file)), { level: 9 }).length
const kb = (n) => `${(n / 1024).toFixed(1)} kB`
let jsTotal = 0
for (const file of js) {
  const size = gz(file)
  jsTotal += size
  console.log(`  ${file}  ${kb(size)} gzipped`)
}
const cssTotal = [...css].reduce((sum, file) => sum + gz(file), 0)
console.log(`first load: ${kb(jsTotal)} of JavaScript and ${kb(cssTotal)} of CSS, gzipped (budget ${kb(BUDGET)} of JavaScript)`)
if (jsTotal > BUDGET) {
  console.error('the first load is over budget: import Element Plus components on demand, split routes')
  process.exit(1)
}
