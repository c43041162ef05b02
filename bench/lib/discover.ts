import { readdir } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ProxyMode } from '../modes/mode.ts'

const MODES_DIR = fileURLToPath(new URL('../modes/', import.meta.url))

/** Every `modes/*.ts` that exports `mode` (or `modes`, several variants of one setup), in run order. */
export async function discoverModes (): Promise<ProxyMode[]> {
  const modes: ProxyMode[] = []
  for (const file of (await readdir(MODES_DIR)).filter((f) => f.endsWith('.ts')).sort()) {
    const mod = await import(pathToFileURL(MODES_DIR + file).href) as { mode?: ProxyMode, modes?: ProxyMode[] }
    if (mod.mode !== undefined) modes.push(mod.mode)
    if (mod.modes !== undefined) modes.push(...mod.modes)
  }
  return modes.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name))
}

/** The modes `--modes` names (direct always: it is the reference), or every mode. */
export function selectModes (all: ProxyMode[], names: string[] | null): ProxyMode[] {
  if (names === null) return all
  const unknown = names.filter((m) => !all.some((mode) => mode.name === m))
  if (unknown.length > 0) throw new Error(`unknown mode ${unknown.join(', ')}; known: ${all.map((m) => m.name).join(', ')}`)
  return all.filter((mode) => mode.name === 'direct' || names.includes(mode.name))
}
