/**
 * The publisher of the cluster phase (bench/cluster.ts) and of the targeted
 * phase under load (bench/run.ts): a process of its own that publishes over
 * HTTP (`POST /api/notifications`, keep-alive connections; belfry's API, or the
 * same route on the plain ws and socket.io servers), as an application backend
 * would, and times each call. Every payload carries its publish time on the
 * clock all the bench's processes share (rpc.ts), so a load generator can
 * tell publish → receipt.
 */
import { Agent, request } from 'node:http'
import { quantile } from './report.js'
import { now, serve } from './rpc.js'
import { API_KEY, payload } from './shared.js'

/** Where one publish goes: a server's base URL, and a user (none: a broadcast). */
export interface Target {
  url: string
  userId?: string
}

/** What a run of publishes reports. Times in ms on the shared clock. */
export interface Published {
  t0: number
  /** When the last call was answered. */
  t1: number
  sent: number
  /** Answered 201. */
  ok: number
  failed: number
  errors: string[]
  /** Recipients the 201 answers counted, summed. */
  recipients: number
  /** The HTTP call, request to 201 (ms). */
  call: { p50: number; p99: number; max: number }
  /** How far behind its schedule the open-loop stream fell at worst (ms). */
  maxLagMs: number
  /** CPU this process used over the run (user + system, ms): whether the publisher could have held the pace back. */
  cpuMs: number
}

/**
 * Keep-alive connections; an idle one is dropped after 2 s, well before the server's keep-alive
 * timeout (5 s), so that no request goes out on a socket the server is closing (ECONNRESET).
 */
const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 2000 })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** One publish; resolves with the status and the answer's body. */
function post(url: string, body: unknown): Promise<{ status: number; json: { ids?: string[]; recipients?: number } }> {
  const data = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/api/notifications`,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          let json = {}
          try {
            json = JSON.parse(Buffer.concat(chunks).toString())
          } catch {}
          resolve({ status: res.statusCode ?? 0, json })
        })
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

/** Publishes `k` to the target, stamped with the time of the call. */
function publishTo(target: Target, k: string) {
  const t = now()
  const audience = target.userId === undefined ? { broadcast: true } : { userId: target.userId }
  return post(target.url, { ...audience, ...payload(k, t) }).then((r) => ({ ...r, t, ms: now() - t }))
}

/** Tallies the calls of one run. */
function tally() {
  const cpu0 = process.cpuUsage()
  const calls: number[] = []
  const errors = new Set<string>()
  const out = { sent: 0, ok: 0, failed: 0, recipients: 0 }
  return {
    out,
    fire(target: Target, k: string): Promise<void> {
      out.sent++
      return publishTo(target, k).then(
        (r) => {
          calls.push(r.ms)
          if (r.status === 201) {
            out.ok++
            out.recipients += r.json.recipients ?? 0
          } else {
            out.failed++
            errors.add(`HTTP ${r.status}`)
          }
        },
        (error: unknown) => {
          out.failed++
          errors.add(error instanceof Error ? error.message : String(error))
        },
      )
    },
    report(t0: number, maxLagMs: number): Published {
      const cpu = process.cpuUsage(cpu0)
      return {
        t0,
        t1: now(),
        ...out,
        errors: [...errors].slice(0, 3),
        call: { p50: quantile(calls, 0.5), p99: quantile(calls, 0.99), max: quantile(calls, 1) },
        maxLagMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
      }
    },
  }
}

serve({
  /**
   * An open-loop stream: `rate` publishes a second for `durationMs`, each sent
   * when due whether or not the earlier ones were answered, round robin over
   * `targets`; publish `i` has the key `${prefix}${i}`.
   */
  async stream(args: { targets: Target[]; rate: number; durationMs: number; prefix: string }): Promise<Published> {
    const total = Math.round((args.rate * args.durationMs) / 1000)
    const run = tally()
    const inFlight: Promise<void>[] = []
    const t0 = now()
    let maxLagMs = 0
    let i = 0
    while (i < total) {
      const due = Math.min(total, Math.floor(((now() - t0) * args.rate) / 1000) + 1)
      if (due - i > 1) maxLagMs = Math.max(maxLagMs, ((due - i - 1) * 1000) / args.rate)
      for (; i < due; i++) inFlight.push(run.fire(args.targets[i % args.targets.length]!, `${args.prefix}${i}`))
      await sleep(1)
    }
    await Promise.all(inFlight)
    return run.report(t0, maxLagMs)
  },

  /**
   * A closed loop: `concurrency` publishes in flight, each followed by the
   * next as soon as it is answered, for `durationMs`; round robin over `targets`.
   */
  async flood(args: { targets: Target[]; concurrency: number; durationMs: number; prefix: string }): Promise<Published> {
    const run = tally()
    const t0 = now()
    const end = t0 + args.durationMs
    let i = 0
    const lane = async () => {
      while (now() < end) {
        const n = i++
        await run.fire(args.targets[n % args.targets.length]!, `${args.prefix}${n}`)
      }
    }
    await Promise.all(Array.from({ length: args.concurrency }, lane))
    return run.report(t0, 0)
  },

  /** One publish (a broadcast, or to one user); resolves when answered, with the notification's id. */
  async once(args: { target: Target; k: string }) {
    const r = await publishTo(args.target, args.k)
    if (r.status !== 201) throw new Error(`publish answered HTTP ${r.status}`)
    return { t0: r.t, t1: r.t + r.ms, id: r.json.ids?.[0] ?? '', recipients: r.json.recipients ?? 0 }
  },
})
