/**
 * Three belfry-server processes (the CLI) on one PostgreSQL and one Redis,
 * behind a round-robin balancer: 300 NotificationClients (100 users × 3 tabs)
 * connect through it, publishes go over HTTP to random processes, and each
 * client must get exactly what its user's inbox holds, once, in publish
 * order; a read change made on one process reaches the user's clients on the
 * others.
 */
import { afterAll, expect, it } from 'vitest'
import {
  type Audience,
  type Cluster,
  closeTabs,
  expectAckedStored,
  expectEveryTabHasItsInbox,
  health,
  openTab,
  openTabs,
  publish,
  randomAudience,
  type Sent,
  seeded,
  startCluster,
  subscribeAll,
  type Tab,
  until,
} from './harness.js'

const USERS = Array.from({ length: 100 }, (_, i) => `u${String(i).padStart(3, '0')}`)
const TABS_PER_USER = 3
const PUBLISHES = 150
const TOPICS = { even: USERS.filter((_, i) => i % 2 === 0), fifth: USERS.filter((_, i) => i % 5 === 0) }

let cluster: Cluster | undefined
const tabs: Tab[] = []

afterAll(async () => {
  closeTabs(tabs)
  await cluster?.stop()
})

it('delivers every publish, made on any process, to every client of its users once and in order; read changes cross processes', async () => {
  const r = seeded('cluster')
  const t = Date.now()
  cluster = await startCluster()
  const c = cluster
  console.log(`[cluster] 3 processes up in ${Date.now() - t} ms`)

  // 300 clients through the balancer, which spreads them round-robin over the processes.
  const t0 = Date.now()
  tabs.push(...(await openTabs(c.wsUrl, USERS, TABS_PER_USER)))
  console.log(`[cluster] ${tabs.length} clients online through the balancer in ${Date.now() - t0} ms`)
  // One more user with a client on each process directly: a read change must cross processes.
  const trio = c.nodes.map((n) => openTab(n.wsUrl, 'trio'))
  tabs.push(...trio)
  await Promise.all(trio.map((t) => t.client.ready({ timeout: 30_000 })))
  const all = [...USERS, 'trio']

  await subscribeAll(c, TOPICS)

  // One at a time, each to a random process: a user's seqs follow the publish order.
  const sent: Sent[] = []
  const recipientsOf = (a: Audience): string[] =>
    'userId' in a ? [a.userId] : 'userIds' in a ? a.userIds : 'topic' in a ? TOPICS[a.topic as keyof typeof TOPICS] : all
  for (let k = 0; k < PUBLISHES; k++) {
    const audience: Audience = k % 10 === 3 ? { userIds: ['trio', r.pick(USERS)] } : randomAudience(r, USERS, Object.keys(TOPICS))
    const s = await publish(r.pick(c.nodes), k, audience)
    expect(s, `publish ${k}`).toMatchObject({ status: 201, recipients: new Set(recipientsOf(audience)).size })
    sent.push(s)
  }
  expect(new Set(sent.map((s) => s.node)).size).toBe(3)
  await expectAckedStored(c, sent)

  const inbox = await expectEveryTabHasItsInbox(c, tabs)
  for (const tab of tabs) {
    const titles = sent.filter((s) => recipientsOf(s.audience).includes(tab.user)).map((s) => s.title)
    expect(
      tab.notes.map((n) => n.title),
      tab.user,
    ).toEqual(titles)
  }
  expect(Math.min(...tabs.map((t) => t.notes.length))).toBeGreaterThan(0)

  // Read changes: the trio's client on process 0 marks one read; its clients on processes 1 and 2 hear of it.
  const [first] = inbox.get('trio')!
  const unreadBefore = inbox.get('trio')!.length
  const change = await trio[0]!.client.markRead(first!.id)
  expect(change).toMatchObject({ ids: [first!.id], unreadCount: unreadBefore - 1 })
  for (const other of trio.slice(1)) {
    await until(() => other.reads.length > 0, 10_000, 'the read change reaches the other processes')
    expect(other.reads).toEqual([{ ids: [first!.id], all: false, seq: unreadBefore, unreadCount: unreadBefore - 1 }])
    expect(other.client.unreadCount).toBe(unreadBefore - 1)
  }
  expect(trio[0]!.reads).toEqual([change]) // its own, once

  // And for every user through the balancer: one tab marks all read, its other two tabs (wherever they are) follow.
  await Promise.all(USERS.map((u) => tabs.find((t) => t.user === u)!.client.markAllRead()))
  const balanced = tabs.filter((t) => t.user !== 'trio')
  await until(() => balanced.every((t) => t.client.unreadCount === 0), 10_000, 'every tab of every user has 0 unread')
  for (const tab of balanced) expect(tab.reads.at(-1), tab.user).toMatchObject({ all: true, unreadCount: 0 })

  // The processes are healthy, and each holds some of the clients (about a third, and one of the trio's).
  const healths = await Promise.all(c.nodes.map(health))
  for (const h of healths) expect(h).toMatchObject({ status: 200, body: { status: 'ok' } })
  const connections = healths.map((h) => h.body.connections as number)
  expect(connections.reduce((a, b) => a + b)).toBe(303)
  expect(Math.min(...connections)).toBeGreaterThan(1)
  console.log(
    `[cluster] clients on each process: ${connections.join('/')}; users with a client on each: ${healths.map((h) => h.body.users).join('/')}`,
  )
})
