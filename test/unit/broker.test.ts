import { pino } from 'pino'
import { expect, it } from 'vitest'
import { type BrokerEvent, InProcessBroker } from '../../src/server/broker/broker.js'
import { brokerContract } from '../contract/broker.js'

brokerContract('InProcessBroker', async () => {
  const broker = new InProcessBroker()
  return { node: async () => broker, dispose: async () => broker.close() }
})

const notification = (n: number): BrokerEvent => ({
  kind: 'notification',
  shared: `{"type":"notification","id":"n${n}","title":"t${n}","body":"","priority":"medium","timestamp":"2024-01-01T00:00:00.000Z"`,
  deliveries: [{ userId: 'u1', seq: n }],
})

// Every subscriber gets every event, as with RedisBroker: one that throws (an app's own observer on the
// broker it hands the server, or another server sharing it) is logged and costs the others nothing.
it('a handler that throws does not keep the event from the others, nor make the publish fail', async () => {
  const errors: string[] = []
  const broker = new InProcessBroker({ logger: pino({ level: 'error' }, { write: (line: string) => errors.push(line) }) })
  const got: BrokerEvent[] = []
  broker.subscribe(() => {
    throw new Error('boom')
  })
  broker.subscribe((e) => got.push(e))
  let failed: unknown
  try {
    await broker.publish([notification(1), notification(2)])
  } catch (error) {
    failed = error
  }
  expect(got).toEqual([notification(1), notification(2)])
  expect(failed).toBeUndefined()
  // Logged, once per event, with the subscriber's error.
  expect(errors.map((l) => JSON.parse(l).err.message)).toEqual(['boom', 'boom'])
  broker.close()
})

it('refuses options that are no object, and a logger without pino’s methods, with a TypeError that says what it got', () => {
  // null met the engine's "Cannot read properties of null"; a logger without error() was found out when a subscriber
  // threw: the broker's catch then threw out of publish(), and the subscribers after it missed the event.
  expect(() => new InProcessBroker(null as never)).toThrow(new TypeError('InProcessBroker: options must be an object; got null'))
  expect(() => new InProcessBroker({ logger: 'info' as never })).toThrow(
    new TypeError('InProcessBroker: options.logger must be an object with debug, info, warn, error methods; got "info"'),
  )
  for (const logger of [{}, { error() {} }]) {
    expect(() => new InProcessBroker({ logger: logger as never }), JSON.stringify(logger)).toThrow(
      /^InProcessBroker: options\.logger .* got one without/,
    )
  }
})
