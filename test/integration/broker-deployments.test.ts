/**
 * The deployment stamp on broker events (see `BrokerEvent` and `Store.deployment`): a server
 * stamps what it hands the broker with its store's token, and drops an event stamped with
 * another (a deployment sharing the broker's channel, whose user ids and seqs are not its
 * store's), counted and warned of at most once a minute. An event with no stamp is taken (an
 * older belfry's process, in a rolling deploy). On the in-process broker, which hands the server
 * whatever is published on it, as another deployment's events would come through Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, expect, it } from 'vitest'
import { type BrokerEvent, InProcessBroker } from '../../src/server/broker/broker.js'
import { SqliteStore } from '../../src/server/index.js'
import { sharedPart } from '../../src/server/serialize.js'
import { holds } from '../helpers/client.js'
import { API_KEY, authedClient, settle, type TestServer, useServer } from '../helpers/server.js'

const start = useServer()
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A SQLite store with the token given, or (undefined) standing for a store without one (an application's own). */
function store(deployment: string | undefined): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-stamp-'))
  dirs.push(dir)
  const s = new SqliteStore(join(dir, 'belfry.db'))
  Object.defineProperty(s, 'deployment', { value: deployment })
  return s
}

/** An event for ann's seq 1, titled, stamped or not. */
const forAnn = (title: string, deployment?: string): BrokerEvent => ({
  kind: 'notification',
  shared: sharedPart({ id: `id-${title}`, title, body: '', priority: 'medium', timestamp: new Date().toISOString() }),
  deliveries: [{ userId: 'ann', seq: 1 }],
  ...(deployment !== undefined && { deployment }),
})

/** A logger whose warnings land in `warnings`. */
function warnLog() {
  const warnings: Record<string, unknown>[] = []
  return { warnings, logger: pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) }) }
}

it("stamps every event it hands the broker with its store's deployment", async () => {
  const broker = new InProcessBroker()
  const seen: BrokerEvent[] = []
  broker.subscribe((e) => seen.push(e))
  const t = await start({ store: store('ours'), broker })
  const ann = await authedClient(t, 'ann')
  await t.server.sendToUser('ann', { title: 'one', body: '' })
  ann.send({ type: 'mark_read', all: true, requestId: 'r' })
  await ann.next((f) => f.type === 'read' && f.requestId === 'r')
  expect(seen.map((e) => [e.kind, e.deployment])).toEqual([
    ['notification', 'ours'],
    ['read', 'ours'],
  ])
  ann.close()
})

it("drops another deployment's events (counted, warned of once), takes its own and unstamped ones", async () => {
  const broker = new InProcessBroker()
  const { warnings, logger } = warnLog()
  const t = await start({ store: store('ours'), broker, logger, metrics: true })
  const ann = await authedClient(t, 'ann')
  broker.publish([forAnn('theirs 1', 'theirs'), forAnn('theirs 2', 'theirs')])
  broker.publish([
    { kind: 'read', userId: 'ann', frame: '{"type":"read","ids":[],"all":true,"seq":1,"unreadCount":0}', deployment: 'theirs' },
  ])
  await settle(ann)
  expect(ann.frames.filter((f) => f.type === 'notification' || f.type === 'read')).toEqual([])
  // An older belfry's process (no stamp), in a rolling deploy: taken as before.
  broker.publish([forAnn('unstamped')])
  await ann.next((f) => f.type === 'notification' && f.title === 'unstamped')
  const told = warnings.filter((w) => String(w.msg).includes('another deployment'))
  expect(told).toHaveLength(1)
  expect(told[0]).toMatchObject({ dropped: 1, deployment: 'ours', theirs: 'theirs' })
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
  expect(await res.text()).toMatch(/^belfry_broker_foreign_events_total 3$/m)
  ann.close()
})

it('with a store without a deployment token, sends events unstamped and drops stamped ones', async () => {
  const broker = new InProcessBroker()
  const seen: BrokerEvent[] = []
  broker.subscribe((e) => seen.push(e))
  const t = await start({ store: store(undefined), broker })
  const ann = await authedClient(t, 'ann')
  broker.publish([forAnn('theirs', 'theirs')])
  await t.server.sendToUser('ann', { title: 'ours', body: '' })
  await settle(ann)
  // Its seq 1 is not ann's here: taken, it would have held back her real seq 1 as already sent.
  expect(ann.of('notification').map((f) => [f.seq, f.title])).toEqual([[1, 'ours']])
  expect(seen[1]).not.toHaveProperty('deployment')
  ann.close()
})

it('two SQLite databases on one broker keep to their own users; two servers on one file share', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-stamp-'))
  dirs.push(dir)
  const broker = new InProcessBroker()
  const a = await start({ store: new SqliteStore(join(dir, 'a.db')), broker })
  const b = await start({ store: new SqliteStore(join(dir, 'b.db')), broker })
  const beside = await start({ store: new SqliteStore(join(dir, 'a.db')), broker })
  const annA = await authedClient(a, 'ann')
  const annB = await authedClient(b, 'ann')
  const annBeside = await authedClient(beside, 'ann')
  await a.server.sendToUser('ann', { title: 'for a', body: '' })
  await b.server.sendToUser('ann', { title: 'for b', body: '' })
  await Promise.all([annA, annB, annBeside].map((c) => settle(c)))
  expect(annA.of('notification').map((f) => f.title)).toEqual(['for a'])
  expect(annB.of('notification').map((f) => f.title)).toEqual(['for b'])
  // The second process on a.db has a's token: a's publish reached it through the broker.
  expect(annBeside.of('notification').map((f) => f.title)).toEqual(['for a'])
  for (const c of [annA, annB, annBeside]) c.close()
})

// An application's own observer on the in-process broker it hands the server (an audit hook, say) that
// throws: every subscriber still gets every event (a second server sharing the broker gets a publish through
// it, not at its read of the store 30 s later), and a publish the broker handed on is no broker failure.
const quiet = pino({ level: 'silent' })
const throwing = () => {
  throw new Error('the app’s observer failed')
}

async function brokerErrors(t: TestServer): Promise<number> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
  const line = (await res.text()).split('\n').find((l) => l.startsWith('belfry_broker_errors_total'))
  return Number(line?.split(' ').at(-1))
}

it('a second server on the broker gets a publish live when an observer subscribed before it throws', async () => {
  const broker = new InProcessBroker({ logger: quiet })
  broker.subscribe(throwing) // the app's, subscribed before it made the servers
  const a = await start({ broker })
  const b = await start({ database: a.database, broker })
  const ann = await authedClient(b, 'ann')
  await a.server.sendToUser('ann', { title: 'from a', body: '' })
  // Well before b's 30 s read of the store.
  await expect.poll(() => ann.of('notification').map((f) => f.title), { timeout: 10_000 }).toEqual(['from a'])
  ann.close()
})

it('a publish the broker handed to the server is not counted as a broker failure when an observer after it throws', async () => {
  const broker = new InProcessBroker({ logger: quiet })
  const s = await start({ broker, metrics: true })
  broker.subscribe(throwing) // the app's, subscribed after the server's own
  const ann = await authedClient(s, 'ann')
  await s.server.sendToUser('ann', { title: 'one', body: '' })
  await expect.poll(() => ann.of('notification').length).toBe(1)
  expect(await brokerErrors(s)).toBe(0)
  ann.close()
})

it('one publish does not leave the server failing a catch-up through the broker (and logging it) every second after', async () => {
  const failures: string[] = []
  const logger = pino({ level: 'error' }, { write: (line: string) => failures.push(line) })
  const broker = new InProcessBroker({ logger: quiet })
  const s = await start({ broker, logger })
  broker.subscribe(throwing) // the app's, subscribed after the server's own
  await s.server.sendToUser('ann', { title: 'one', body: '' })
  // Three sweeps: a publish the broker failed is followed by a catch-up for every process at each one.
  // (At most the publish's own failure, if any: not one more each second.)
  await holds(() => expect(failures.filter((l) => l.includes('broker publish failed')).length).toBeLessThanOrEqual(1), 3500)
})
