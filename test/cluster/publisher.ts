/**
 * A publisher process of the sequence-integrity test (sequences.test.ts): it
 * opens its own PostgresStore on the shared schema, reads its plan (one JSON
 * line on stdin), says `ready`, waits for `go` (so that every publisher starts
 * at once), then publishes the plan `concurrency` at a time while
 * `fanOutDrivers` loops run fan-out jobs (its own and the other processes'),
 * and drives `fanOut()` until none waits. It prints one JSON line: what it
 * published and every failure (none expected: a deadlock or a serialization
 * failure must not escape the store).
 *
 * Run: node --import tsx test/cluster/publisher.ts
 */
import { createInterface } from 'node:readline'
import { PostgresStore } from '../../src/server/store/postgres.js'
import type { Audience } from '../../src/server/store/store.js'

export interface PlanItem {
  k: number
  audience: Audience
}

export interface Plan {
  url: string
  schema: string
  fanOutBatch: number
  concurrency: number
  fanOutDrivers: number
  items: PlanItem[]
}

export interface PublisherReport {
  published: { k: number; id: string; recipients: number; pending: boolean; direct: number }[]
  /** Fan-out batches this process committed. */
  batches: number
  failures: string[]
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const nextLine = async (): Promise<string> => {
  const { value, done } = await lines.next()
  if (done) throw new Error('stdin closed')
  return value as string
}

const plan = JSON.parse(await nextLine()) as Plan
const store = await PostgresStore.open(plan.url, {
  schema: plan.schema,
  fanOutBatch: plan.fanOutBatch,
  poolSize: plan.concurrency + plan.fanOutDrivers,
})
const report: PublisherReport = { published: [], batches: 0, failures: [] }
const fail = (what: string, error: unknown) => {
  const e = error as { code?: string; message?: string }
  report.failures.push(`${what}: ${e.code ?? ''} ${e.message ?? String(error)}`)
}

process.stdout.write('ready\n')
if ((await nextLine()) !== 'go') throw new Error('expected "go"')

let publishing = true
let next = 0
const publisher = async () => {
  for (let item = plan.items[next++]; item; item = plan.items[next++]) {
    try {
      const p = await store.publish(item.audience, { title: `n${item.k}`, body: '', data: { k: item.k } })
      report.published.push({ k: item.k, id: p.notification.id, recipients: p.recipients, pending: p.pending, direct: p.deliveries.length })
    } catch (error) {
      fail(`publish ${item.k}`, error)
    }
  }
}
/** Runs fan-out batches while publishing goes on; once it is over, until no job waits. */
const driver = async () => {
  for (;;) {
    try {
      if (await store.fanOut()) {
        report.batches++
        continue
      }
    } catch (error) {
      fail('fanOut', error)
    }
    if (!publishing) return
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
const drivers = Array.from({ length: plan.fanOutDrivers }, driver)
await Promise.all(Array.from({ length: plan.concurrency }, publisher))
publishing = false
await Promise.all(drivers)
await store.close()
process.stdout.write(`${JSON.stringify(report)}\n`)
