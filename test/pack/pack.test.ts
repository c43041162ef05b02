/**
 * The packages as a user gets them from the registry: each is packed with pnpm (its `prepack` builds it),
 * the tarballs are read and checked, then installed with npm into a fresh app (fastify and ws from the
 * registry) that runs an ESM and a CommonJS smoke and type-checks a user file under three module
 * resolutions. publint and arethetypeswrong judge each tarball. Needs the registry; about two minutes, so
 * it runs in `npm run test:pack` and `.ci/run`, not in `npm test`.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readTarball } from './tarball.ts'

const PACKAGES = ['core', 'websocket-tcp', 'h2-connect', 'filters'] as const
type Name = typeof PACKAGES[number]
const REPO = 'https://github.com/switchyard/switchyard'

const root = fileURLToPath(new URL('../../', import.meta.url))
const appSources = fileURLToPath(new URL('./app/', import.meta.url))
// The e2e package's own tools: TypeScript ~5.9, publint, arethetypeswrong (pinned in the lockfile).
const bin = (name: string): string => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'swy-pack-'))
const app = join(work, 'app')
if (process.env.SWITCHYARD_PACK_KEEP !== undefined) process.stdout.write(`pack test work dir: ${work}\n`)

interface Packed { file: string, files: Map<string, Buffer>, manifest: Record<string, any> }
const packed = new Map<Name, Packed>()

function run (command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number, output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
      resolve({ code, output: `${stdout}${stderr}` })
    })
  })
}

async function mustRun (command: string, args: string[], cwd: string): Promise<string> {
  const { code, output } = await run(command, args, cwd)
  assert.equal(code, 0, `${basename(command)} ${args.join(' ')} failed in ${cwd}:\n${output}`)
  return output
}

before(async () => {
  // One at a time: each prepack runs tsc -b, and the companions' builds reference core's.
  for (const name of PACKAGES) {
    const out = await mustRun('npx', ['-y', 'pnpm@12.4.2', 'pack', '--pack-destination', work, '--json'], join(root, 'packages', name))
    const json = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as { filename: string }
    const file = json.filename.startsWith('/') ? json.filename : join(work, basename(json.filename))
    const files = readTarball(file)
    packed.set(name, { file, files, manifest: JSON.parse(files.get('package.json')!.toString()) })
  }
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'switchyard-pack-app',
    private: true,
    type: 'module',
    dependencies: {
      ...Object.fromEntries(PACKAGES.map((name) => [`@switchyard/${name}`, `file:${packed.get(name)!.file}`])),
      fastify: '^5.4.0',
      ws: '^8.18.0',
      '@types/node': '^20.19.0',
      '@types/ws': '^8.18.0'
    }
  }, null, 2))
  for (const file of ['esm-smoke.mjs', 'cjs-smoke.cjs', 'types-ok.ts', 'types-typo.ts']) copyFileSync(join(appSources, file), join(app, file))
  await mustRun('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], app)
})

// SWITCHYARD_PACK_KEEP=1 keeps the tarballs and the app, to look into a failure.
after(() => { if (process.env.SWITCHYARD_PACK_KEEP === undefined) rmSync(work, { recursive: true, force: true }) })

test('reports the size of each tarball', (t) => {
  for (const name of PACKAGES) {
    const { file, files } = packed.get(name)!
    const unpacked = [...files.values()].reduce((sum, b) => sum + b.length, 0)
    t.diagnostic(`@switchyard/${name}: ${(statSync(file).size / 1024).toFixed(1)} KiB packed, ${(unpacked / 1024).toFixed(1)} KiB unpacked, ${files.size} files`)
    assert.ok(files.size > 0)
  }
})

test('no packed package.json holds a workspace: range, and the published exports carry no source condition', () => {
  for (const name of PACKAGES) {
    const text = packed.get(name)!.files.get('package.json')!.toString()
    assert.doesNotMatch(text, /workspace:/, `@switchyard/${name}`)
    assert.doesNotMatch(JSON.stringify(packed.get(name)!.manifest.exports), /"source"/, `@switchyard/${name}`)
  }
  for (const name of ['websocket-tcp', 'h2-connect', 'filters'] as const) {
    const range = packed.get(name)!.manifest.dependencies['@switchyard/core']
    assert.match(range, /^\^\d+\.\d+\.\d+$/, `@switchyard/${name} depends on core with a caret range`)
  }
})

test('each tarball holds dist/*.js, dist/*.d.ts, README.md, LICENSE and CHANGELOG.md, and nothing from test/', () => {
  for (const name of PACKAGES) {
    const { files } = packed.get(name)!
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) {
      assert.ok(files.has(file), `@switchyard/${name} lacks ${file}`)
    }
    assert.deepEqual([...files.keys()].filter((f) => /(^|\/)test\/|\.test\.|\.tsbuildinfo$/.test(f)), [], `@switchyard/${name}`)
    assert.match(files.get('LICENSE')!.toString(), /^MIT License/)
  }
  assert.ok(packed.get('core')!.files.has('dist/internal.js'), 'core ships its ./internal entry')
  assert.ok(packed.get('core')!.files.has('dist/internal.d.ts'), 'core ships its ./internal types')
})

test('each CHANGELOG\'s newest entry is the packed version, and none exists before the first release', () => {
  for (const name of PACKAGES) {
    const { files, manifest } = packed.get(name)!
    const versions = [...files.get('CHANGELOG.md')!.toString().matchAll(/^## (\d+\.\d+\.\d+\S*)$/gm)].map((m) => m[1])
    if (manifest.version === '0.0.0') assert.deepEqual(versions, [], `@switchyard/${name} is unreleased`)
    else assert.equal(versions[0], manifest.version, `@switchyard/${name}`)
  }
})

test('every exports target, main and types is in its tarball, and every source map resolves to a shipped file', () => {
  for (const name of PACKAGES) {
    const { files, manifest } = packed.get(name)!
    const conditions = Object.values(manifest.exports as Record<string, string | Record<string, string>>)
      .flatMap((entry) => typeof entry === 'string' ? [entry] : Object.values(entry))
    const targets = [manifest.main, manifest.types, ...conditions]
    for (const target of targets) assert.ok(files.has(target.replace(/^\.\//, '')), `@switchyard/${name}: ${target} is not shipped`)
    assert.ok(Object.keys(manifest.exports).every((key) => key === './package.json' || manifest.exports[key].default !== undefined), `@switchyard/${name}: every entry has a default condition`)
    for (const [file, bytes] of files) {
      if (!file.endsWith('.map')) continue
      const map = JSON.parse(bytes.toString()) as { sources: string[] }
      for (const source of map.sources) {
        const resolved = join(file, '..', source)
        assert.ok(files.has(resolved), `@switchyard/${name}: ${file} points at ${resolved}, which is not shipped`)
      }
    }
  }
})

test('every README link is absolute, and every file a README names is in its tarball', () => {
  for (const name of PACKAGES) {
    const { files } = packed.get(name)!
    const readme = files.get('README.md')!.toString()
    const prose = readme.replace(/```[\s\S]*?```/g, '')
    for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      assert.match(target!, /^(https?:\/\/|#|mailto:)/, `@switchyard/${name} README links ${target}`)
    }
    for (const [, target] of prose.matchAll(/\]\((https:\/\/github\.com\/[^)\s]+)\)/g)) {
      assert.ok(target!.startsWith(REPO), `@switchyard/${name} README links another repository: ${target}`)
    }
    // A code span naming a file, not inside a link: it must be a file of this package.
    const unlinked = prose.replace(/\[`[^`]*`\]\([^)]*\)/g, '')
    for (const [, span] of unlinked.matchAll(/`([^`\s]+)`/g)) {
      if (!/^[\w.-]+(\/[\w.-]+)*\.(ts|js|mjs|cjs|json|md)$/.test(span!) || span!.startsWith('@')) continue
      if (!span!.includes('/') && !span!.endsWith('.test.ts')) continue
      assert.ok(files.has(span!), `@switchyard/${name} README names ${span}, which is not in its tarball`)
    }
  }
})

test('the Node running this satisfies every package\'s engines floor', () => {
  const [major, minor, patch] = process.versions.node.split('.').map(Number) as [number, number, number]
  for (const name of PACKAGES) {
    const floor = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(packed.get(name)!.manifest.engines.node)
    assert.ok(floor, `@switchyard/${name} engines.node is a plain floor`)
    const [, a, b, c] = floor.map(Number) as [number, number, number, number]
    const ok = major > a || (major === a && (minor > b || (minor === b && patch >= c)))
    assert.ok(ok, `Node ${process.versions.node} is below @switchyard/${name}'s floor ${floor[0]}`)
  }
})

test('an ESM app echoes a WebSocket through core, through the legacy pipe and across the HTTP/2 hop', async () => {
  const out = await mustRun(process.execPath, ['esm-smoke.mjs'], app)
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, string>
  assert.deepEqual(result, {
    newStyle: 'switchyard:hi', // the front's header-mutation filter ran
    legacy: '-:hi', // a legacy route runs no HTTP filter
    h2: 'switchyard:hi', // filtered at the front, then carried by extended CONNECT and the sidecar
    errorCode: 'SWY_ERR_FILTER'
  })
})

test('a CommonJS app require()s every package and its ./internal entry', async () => {
  const out = await mustRun(process.execPath, ['cjs-smoke.cjs'], app)
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, string>
  assert.deepEqual(result, {
    proxy: 'function',
    defineError: 'function',
    errorCode: 'SWY_ERR_FILTER',
    h2ErrorCode: 'SWY_ERR_H2_OPTIONS',
    stats: 'function'
  })
})

const MODES = [
  { name: 'NodeNext', module: 'NodeNext', moduleResolution: 'NodeNext' },
  { name: 'node16', module: 'node16', moduleResolution: 'node16' },
  { name: 'bundler', module: 'ESNext', moduleResolution: 'bundler' }
] as const

for (const mode of MODES) {
  test(`a user file type-checks under ${mode.name} with skipLibCheck: false, and a typo in upstream does not`, async (t) => {
    // One program holds both files: the only error allowed is the typo's.
    const config = join(app, `tsconfig.${mode.name}.json`)
    writeFileSync(config, JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: mode.module, moduleResolution: mode.moduleResolution, strict: true,
        skipLibCheck: false, noEmit: true, types: ['node']
      },
      files: ['types-ok.ts', 'types-typo.ts']
    }))
    const { code, output } = await run(bin('tsc'), ['-p', config], app)
    const errors = output.split('\n').filter((line) => /error TS\d+/.test(line))
    t.diagnostic(`${mode.name}: ${errors.length} error(s): ${errors.join(' | ')}`)
    assert.notEqual(code, 0, 'the typo type-checked')
    assert.equal(errors.length, 1, output)
    assert.match(errors[0]!, /^types-typo\.ts\(7,\d+\): error TS\d+: .*'clustr'/)
  })
}

test('publint --strict finds nothing in any tarball', async () => {
  for (const name of PACKAGES) {
    const { code, output } = await run(bin('publint'), ['run', packed.get(name)!.file, '--strict'], app)
    assert.equal(code, 0, `@switchyard/${name}:\n${output}`)
    assert.doesNotMatch(output, /Errors:|Warnings:|Suggestions:/, `@switchyard/${name}:\n${output}`)
  }
})

// Ignored: node10 (the node16 profile: no `exports` support, these are ESM packages), and cjs-resolves-to-esm
// (TypeScript's node16 mode predates require(esm); Node ≥ 20.19 loads them with require(), which the
// CommonJS smoke above runs).
test('arethetypeswrong finds no problem in any tarball under the node16 profile, require(esm) aside', async () => {
  for (const name of PACKAGES) {
    const args = [packed.get(name)!.file, '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'table']
    const { code, output } = await run(bin('attw'), args, app)
    assert.equal(code, 0, `@switchyard/${name}:\n${output}`)
  }
})
