import { expect, it } from 'vitest'
import { Batcher } from '../../src/server/store/batch.js'

/** A Batcher of maxima whose writes wait until released, flushed by hand. */
function held() {
  const releases: (() => void)[] = []
  const batcher = new Batcher<number, number>(
    Math.max,
    (values) => new Promise((resolve) => releases.push(() => resolve(values))),
    () => {},
  )
  return { batcher, releases }
}

it('reads what is waiting and what every write in progress has, merged: an older value hides no newer one', async () => {
  const { batcher, releases } = held()
  const first = batcher.add('ann', 10)
  void batcher.flush() // being written: 10
  const second = batcher.add('ann', 7)
  void batcher.flush() // being written too, before the first settled: 7
  void batcher.add('ann', 5) // waiting: 5
  expect(batcher.unwritten('ann')).toBe(10)
  expect(batcher.unwritten('bob')).toBeUndefined()
  releases[0]!()
  expect(await first).toBe(10)
  expect(batcher.unwritten('ann')).toBe(7)
  releases[1]!()
  expect(await second).toBe(7)
  expect(batcher.unwritten('ann')).toBe(5)
})

it('forgets a write that failed: its callers get the error', async () => {
  const batcher = new Batcher<number, number>(
    Math.max,
    () => Promise.reject(new Error('lost')),
    () => {},
  )
  const ack = batcher.add('ann', 3)
  await batcher.flush()
  await expect(ack).rejects.toThrow('lost')
  expect(batcher.unwritten('ann')).toBeUndefined()
})
