import { Session } from 'node:inspector/promises'

/** What Runtime.getProperties says of an object's properties (the private ones apart). */
interface Properties {
  result: { name: string }[]
  privateProperties?: { name: string; value?: { objectId?: string } }[]
}

/**
 * The own keys of an object held in a private field (`#name`) of `target`, read through the inspector protocol:
 * for a test that holds a long-lived object keeps nothing of what it no longer needs, where nothing public shows it.
 */
export async function privateKeys(target: object, name: string): Promise<string[]> {
  const session = new Session()
  session.connect()
  const properties = (objectId: string) => session.post('Runtime.getProperties', { objectId, ownProperties: true }) as Promise<Properties>
  const g = globalThis as Record<string, unknown>
  try {
    g.__privateKeysOf = target
    const { result } = await session.post('Runtime.evaluate', { expression: 'globalThis.__privateKeysOf' })
    const field = (await properties(result.objectId!)).privateProperties?.find((p) => p.name === name)?.value?.objectId
    if (!field) throw new Error(`no private field ${name} holding an object`)
    return (await properties(field)).result.map((p) => p.name)
  } finally {
    delete g.__privateKeysOf
    session.disconnect()
  }
}
