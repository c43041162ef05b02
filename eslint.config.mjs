// The lint of every workspace package (`eslint .` in each, from its `lint` script): neostandard, the style
// the Fastify organisation uses, for TypeScript, plus the rules this project keeps. Project checks that are
// not about code (each Errors table against its errors.ts, every test folder run by a script) are in
// scripts/check-project.mjs.
import neostandard from 'neostandard'

/** Tests left focused, skipped or marked todo each hide a behaviour. */
const focusedOrSkipped = [
  { selector: "CallExpression[callee.property.name='only']", message: 'focused test (.only) left in' },
  { selector: "CallExpression[callee.property.name='skip'][callee.object.name!='t']", message: 'skipped test (.skip) left in: a test needing a system binary asks havePeers(t, …) (test/helpers/peers.ts)' },
  { selector: "Property[key.name='only'][value.value=true]", message: 'focused test (only: true) left in' },
  { selector: "Property[key.name='skip']", message: 'skipped test (skip:) left in' },
  { selector: "Property[key.name='todo']", message: 'todo test (todo:) left in' }
]
/** `as const` objects and modules instead (STYLE.md). */
const noEnumOrNamespace = [
  { selector: 'TSEnumDeclaration', message: 'TypeScript enum: use an `as const` object' },
  { selector: "TSModuleDeclaration[kind='namespace']", message: 'TypeScript namespace: use a module' }
]

export default [
  ...neostandard({
    ts: true,
    ignores: ['**/node_modules/**', '**/dist/**', '**/test-artifacts/**', 'bench/results/**', '**/*.d.ts']
  }),
  {
    rules: {
      'no-restricted-syntax': ['error', ...noEnumOrNamespace],
      // `void promise` marks a promise deliberately left to run.
      'no-void': ['error', { allowAsStatement: true }],
      // TypeScript itself refuses a real redeclaration; `const X = {…} as const` with `type X` is the enum idiom.
      '@typescript-eslint/no-redeclare': 'off',
      // A variable a callback reads before it is assigned (the callback runs later) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Loops that wait on events (`while (!stopped) await …`) change their condition from callbacks.
      'no-unmodified-loop-condition': 'off'
    }
  },
  {
    files: ['examples/mesh/page/**'],
    languageOptions: { globals: { location: 'readonly', EventSource: 'readonly', CSS: 'readonly', document: 'readonly', window: 'readonly', WebSocket: 'readonly', fetch: 'readonly' } }
  },
  {
    files: ['packages/*/src/**', 'src/**'],
    rules: {
      'no-console': ['error', { allow: ['warn', 'error'] }],
      // Split a file by role when it grows (STYLE.md).
      'max-lines': ['error', { max: 600 }]
    }
  },
  {
    files: ['**/test/**', '**/*.test.ts', '**/*.tst.ts'],
    ignores: ['test/helpers/peers.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...noEnumOrNamespace, ...focusedOrSkipped]
    }
  }
]
