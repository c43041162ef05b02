/**
 * `node --import tsx stress/table.ts`: prints the stress figures as a markdown table and writes it to
 * test-artifacts/stress-table.md. With `--reset`, removes the previous run's rows instead.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { artifacts, rowsDir, type Row } from './figures.ts'

if (process.argv.includes('--reset')) {
  rmSync(rowsDir, { recursive: true, force: true })
} else {
  const order = ['load-idle', 'load-h2', 'churn', 'nothing-lost']
  const files = existsSync(rowsDir) ? readdirSync(rowsDir).filter((f) => f.endsWith('.json')) : []
  const rows = files.flatMap((f) => JSON.parse(readFileSync(new URL(f, rowsDir), 'utf8')) as Row[])
  rows.sort((a, b) => rank(a.suite) - rank(b.suite))
  function rank (suite: string): number {
    const i = order.findIndex((o) => suite.startsWith(o))
    return i === -1 ? order.length : i
  }
  const table = [
    `Stress figures (node ${process.version}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    '| suite | figure | value |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.suite} | ${r.figure} | ${r.value} |`),
    ''
  ].join('\n')
  process.stdout.write(`\n${table}\n`)
  writeFileSync(new URL('stress-table.md', artifacts), table)
}
