/**
 * The contract every `Broker` keeps (src/server/broker/broker.ts), as one
 * suite that any implementation runs against. A harness gives brokers on one
 * bus: for the in-process broker, the same instance; for a networked one, a
 * new connection standing for another server process.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Broker, BrokerEvent } from '../../src/server/broker/broker.js'

export interface BrokerBus {
  /** A broker on this bus (another process's view of it, where the broker has such a thing). */
  node(): Promise<Broker>
  /** Closes what the bus opened. */
  dispose(): Promise<void>
}

const notification = (n: number): BrokerEvent => ({
  kind: 'notification',
  shared: `{"type":"notification","id":"n${n}","title":"t${n}","body":"","priority":"medium","timestamp":"2024-01-01T00:00:00.000Z"`,
  deliveries: [{ userId: `u${n % 3}`, seq: n }],
  // Some carry users to catch up (an idempotent replay's), all or a list: carried as they are.
  ...(n % 4 === 1 && { catchUp: n % 8 === 1 ? 'all' : [`u${n % 3}`, 'x'] }),
  // Most carry their deployment's stamp (a store's token), some none (a process of one, an older belfry): as they are.
  ...(n % 3 !== 0 && { deployment: 'b9a7c2e0-5d1f-4c3a-9e8b-7f6d5c4b3a21' }),
})
const read = (userId: string): BrokerEvent => ({
  kind: 'read',
  userId,
  origin: 'c1',
  frame: '{"type":"read","ids":[],"all":true,"seq":1,"unreadCount":0}',
  deployment: 'b9a7c2e0-5d1f-4c3a-9e8b-7f6d5c4b3a21',
})

export function brokerContract(name: string, makeBus: () => Promise<BrokerBus>): void {
  let bus: BrokerBus | undefined
  afterEach(async () => {
    await bus?.dispose()
    bus = undefined
  })
  const start = async () => {
    bus = await makeBus()
    return bus
  }

  describe(`${name}: broker contract`, () => {
    it('hands every event to every subscriber, in publish order, as plain data', async () => {
      const b = await start()
      const [publisher, other] = [await b.node(), await b.node()]
      const got: BrokerEvent[][] = [[], []]
      publisher.subscribe((e) => got[0]!.push(e))
      other.subscribe((e) => got[1]!.push(e))
      const events = [...Array.from({ length: 20 }, (_, i) => notification(i + 1)), read('u1')]
      for (const e of events.slice(0, 10)) await publisher.publish([e])
      await publisher.publish(events.slice(10))
      const expected = JSON.parse(JSON.stringify(events)) as BrokerEvent[]
      await vi.waitFor(() => {
        expect(got[0]).toEqual(expected)
        expect(got[1]).toEqual(expected)
      })
    })

    it('stops calling a handler once it is removed, and others keep theirs', async () => {
      const b = await start()
      const broker = await b.node()
      const kept: BrokerEvent[] = []
      const removed: BrokerEvent[] = []
      broker.subscribe((e) => kept.push(e))
      const off = broker.subscribe((e) => removed.push(e))
      await broker.publish([notification(1)])
      await vi.waitFor(() => expect(removed).toHaveLength(1))
      off()
      await broker.publish([notification(2)])
      await vi.waitFor(() => expect(kept).toHaveLength(2))
      expect(removed).toHaveLength(1)
    })

    it('closes twice without error', async () => {
      const b = await start()
      const broker = await b.node()
      await broker.close()
      await broker.close()
    })
  })
}
