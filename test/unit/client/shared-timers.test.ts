import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { sharedConnection } from '../../../src/shared/index.js'
import { FakeChannel, FakeLocks, tabConnection } from '../../helpers/locks.js'
import { cleanup, createClient, jwt, startMockServer, tick } from '../../helpers/mock-server.js'

/**
 * Connection.close() is final: it clears every timer (as state.test.ts holds
 * the client's own to), belfry/shared's too: the retry of a leader whose token
 * provider failed, and a follower's user check's time limit (cleared as soon
 * as the provider answers).
 */
beforeEach(() => {
  vi.useFakeTimers()
  FakeChannel.reset()
})
afterEach(cleanup)

/** A lone tab whose token provider works for the join and fails for the socket (signed out): its lead steps down. */
function signedOutLeader() {
  let calls = 0
  const made = createClient(startMockServer(), {
    token: () => {
      if (++calls > 1) throw new Error('signed out')
      return jwt('u1')
    },
    backoff: () => 20_000,
    connection: tabConnection(new FakeLocks(), 'a'),
  })
  made.client.on('error', () => {})
  return made
}

describe('belfry/shared: close() leaves no timer behind', () => {
  it('after its leader stepped down on a failing token provider (the retry of its lead)', async () => {
    const { client, log } = signedOutLeader()
    client.connect()
    await tick(100)
    expect(log.statuses.map((s) => s.reason)).toContain('token or url failed')
    client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('closed from a status handler of that very step-down (the app stops on a lost session): no retry is armed after', async () => {
    const { client } = signedOutLeader()
    let closedOn: string | undefined
    client.on('status', (e) => {
      if (e.reason === 'token or url failed' && !closedOn) {
        closedOn = e.reason
        client.close()
      }
    })
    client.connect()
    await tick(100)
    expect([closedOn, client.state]).toEqual(['token or url failed', 'closed'])
    await tick()
    // The leader's retry (setTimeout(queue, 20 s), the backoff's) would be armed after leave() had cleared the timers.
    expect(vi.getTimerCount()).toBe(0)
  })

  it('while a follower’s user check waits for a token provider that hangs (its time limit)', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    let hang = false
    const follower = createClient(server, {
      token: () => (hang ? new Promise<string>(() => {}) : jwt('u1')),
      connection: tabConnection(locks, 'b'),
    })
    follower.client.connect()
    await tick(100)
    expect([leader.client.mode, follower.client.state]).toEqual(['leader', 'online'])
    // The leader's socket drops: the follower asks its token who its user is, and the provider hangs.
    hang = true
    server.peer.close(1012)
    await tick(50)
    leader.client.close()
    follower.client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('closed from a handler of its first status (`connecting`, told inside connect()): it joins no group', async () => {
    const server = startMockServer()
    const { client } = createClient(server, {
      connection: sharedConnection({
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel,
      }),
    })
    client.on('status', (e) => {
      if (e.to === 'connecting') client.close()
    })
    client.connect()
    await tick(100)
    expect(client.state).toBe('closed')
    expect(server.peers).toHaveLength(0)
    // The beat interval (setInterval every `beat` ms) would be armed by join() after close() had cleared the timers.
    expect(vi.getTimerCount()).toBe(0)
  })
})

/** A tab's lock manager whose requests are counted while pending: made, and neither granted nor settled. */
function counting(locks: FakeLocks, tab: string) {
  const inner = locks.forTab(tab)
  let pending = 0
  const manager = {
    query: inner.query.bind(inner),
    request: ((name: string, options: LockOptions, callback: LockGrantedCallback<unknown>) => {
      let waiting = true
      pending++
      const done = () => {
        if (waiting) pending--
        waiting = false
      }
      const p = inner.request(name, options, (lock) => {
        done()
        return callback(lock)
      })
      p.then(done, done)
      return p
    }) as LockManager['request'],
  } as LockManager
  return { manager, pending: () => pending }
}

/**
 * A follower's lock request waits behind the leader's lock for as long as that leader leads (days, in a tab left
 * open). A tab that leaves its group (its client closed, as a provider that remounts or an app that signs out does
 * it; its token naming another user) withdraws it: one left queued would hold the closed connection, and its
 * client, in the tab's lock manager till then. A withdrawn request rejects with an AbortError, which is not the
 * steal of a lock the tab held: the tab neither follows again nor leads on its own.
 */
describe('belfry/shared: a tab that leaves its group withdraws its lock request', () => {
  it('200 follower clients made and closed in one tab leave no request queued behind the leader', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    expect(leader.client.mode).toBe('leader')
    const tabB = counting(locks, 'b')
    for (let i = 0; i < 200; i++) {
      const { client, log } = createClient(server, {
        token: jwt('u1'),
        connection: sharedConnection({ locks: tabB.manager, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
      })
      client.connect()
      await tick(40)
      expect([client.mode, client.state]).toEqual(['follower', 'online'])
      client.close()
      await tick()
      expect([client.mode, log.errors]).toEqual(['follower', []])
    }
    expect([leader.client.mode, server.peers.length]).toEqual(['leader', 1])
    expect(tabB.pending()).toBe(0)
  }, 60_000)

  it('a follower whose token switches users 100 times waits for its own group’s lock alone, following all along', async () => {
    const escaped: unknown[] = []
    const onRejection = (reason: unknown) => escaped.push(reason)
    process.on('unhandledRejection', onRejection)
    onTestFinished(() => {
      process.off('unhandledRejection', onRejection)
    })
    const server = startMockServer()
    const locks = new FakeLocks()
    // A leader of each user's group, in tabs of their own.
    for (const user of ['u1', 'u2']) {
      const l = createClient(server, { token: jwt(user), backoff: () => 100, connection: tabConnection(locks, `a-${user}`) })
      l.client.connect()
      await tick(100)
      expect(l.client.mode).toBe('leader')
    }
    const tabB = counting(locks, 'b')
    let user = 'u1'
    const { client, log } = createClient(server, {
      token: () => jwt(user),
      connection: sharedConnection({ locks: tabB.manager, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
    })
    // The group the tab is in: the user of its token when it last went online (it follows, so its own token's).
    let joined = 'u1'
    const modes = new Set<string>()
    client.on('status', (e) => {
      modes.add(e.mode)
      if (e.to === 'online') joined = user
    })
    client.connect()
    await tick(100)
    expect([client.mode, client.state]).toEqual(['follower', 'online'])
    const sockets = server.peers.length
    for (let i = 0; i < 100; i++) {
      user = user === 'u1' ? 'u2' : 'u1'
      // The leader's socket drops: the follower asks its token who its user is, and moves to the other user's group.
      for (const peer of server.peers) if (!peer.closed) peer.close(1012)
      for (let t = 0; t < 100 && !(client.state === 'online' && joined === user); t++) await tick(50)
      expect([client.mode, client.state, joined]).toEqual(['follower', 'online', user])
    }
    expect(tabB.pending()).toBe(1)
    // No socket of its own (the leaders' reconnect: theirs are the only new ones), no error, no unhandled rejection.
    expect([[...modes], log.errors]).toEqual([['follower'], []])
    expect(server.peers.length - sockets).toBe(200)
    vi.useRealTimers()
    await new Promise((resolve) => setTimeout(resolve, 50)) // a real turn: Node tells unhandled rejections then
    expect(escaped.map(String)).toEqual([])
  }, 60_000)
})

/**
 * A tab joins its user's group on its url and token providers' answers: one that never answers (a stalled token
 * backend) is reported at connectTimeout as the client without sharing reports it, and asked again after the
 * backoff, as one that fails is; its late answer is ignored. (Regression: the tab stayed `connecting` for ever,
 * saying nothing.)
 */
describe('belfry/shared: a token provider that never answers as the tab joins', () => {
  it('is reported at connectTimeout as a BelfryError and asked again after the backoff; close() clears the timers', async () => {
    let calls = 0
    const { client, log } = createClient(startMockServer(), {
      token: () => {
        calls++
        return new Promise<string>(() => {})
      },
      connectTimeout: 200,
      backoff: () => 1000,
      connection: tabConnection(new FakeLocks(), 'a'),
    })
    client.connect()
    await tick(150)
    expect(log.errors).toEqual([])
    await tick(100)
    expect(log.errors.map((e) => [e.name, e.message])).toEqual([
      ['BelfryError', 'url or token provider did not answer within connectTimeout'],
    ])
    expect([client.state, calls]).toEqual(['connecting', 1])
    await tick(1000)
    expect(calls).toBe(2)
    await tick(200)
    expect(log.errors).toHaveLength(2)
    client.close()
    await tick()
    expect(vi.getTimerCount()).toBe(0)
  })
})

/**
 * A follower's user check (its token asked who its user is when the leader's
 * socket drops, for at most connectTimeout) may be answered after its time:
 * that answer counts only while no newer check was made and the tab stayed
 * in its group.
 */
describe('belfry/shared: a follower’s user check answered late', () => {
  /**
   * A leader (tab a, user u1) and a follower (tab b) whose token names `user.name`, and the groups (their users) the
   * follower joined, in order.
   */
  async function leaderAndFollower() {
    const server = startMockServer()
    const locks = new FakeLocks()
    const leader = createClient(server, { connection: tabConnection(locks, 'a') })
    leader.client.connect()
    await tick(100)
    const user = { name: 'u1' }
    const groups: string[] = []
    let held: ((token: string) => void) | null | undefined
    const follower = createClient(server, {
      token: () => (held === null ? new Promise<string>((r) => (held = r)) : jwt(user.name)),
      connectTimeout: 1000,
      connection: sharedConnection({
        locks: locks.forTab('b'),
        BroadcastChannel: class extends FakeChannel {
          constructor(name: string) {
            super(name)
            groups.push(name.slice(name.indexOf('#') + 1))
          }
        } as unknown as typeof BroadcastChannel,
      }),
    })
    follower.client.connect()
    await tick(100)
    expect([leader.client.mode, follower.client.mode, follower.client.state, groups]).toEqual(['leader', 'follower', 'online', ['u1']])
    /** The leader's socket drops, and the follower's check waits for the provider past its time limit: its answer, to give later. */
    const lateCheck = async () => {
      held = null
      server.peer.close(1012)
      await tick(50)
      const answer = held!
      held = undefined
      await tick(2000)
      expect(follower.client.state).toBe('online')
      return answer
    }
    return { server, leader, follower, user, groups, lateCheck }
  }

  it('is ignored once the tab has moved to another user: it stays in that user’s group', async () => {
    const { leader, follower, user, groups, lateCheck } = await leaderAndFollower()
    const answer = await lateCheck()
    // The user signs in as u2; the leader's tab closes, and the follower's socket, leading, finds that its token names u2.
    user.name = 'u2'
    leader.client.close()
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state]).toEqual([['u1', 'u2'], 'leader', 'online'])
    // The first check answers now, with the token of before (u1): the tab neither leaves u2's group nor rejoins.
    answer(jwt('u1'))
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state]).toEqual([['u1', 'u2'], 'leader', 'online'])
  })

  it('is ignored once a newer check has answered: the tab stays in its group', async () => {
    const { server, follower, groups, lateCheck } = await leaderAndFollower()
    const answer = await lateCheck()
    // The leader's socket drops again: the newer check answers at once, u1 (the tab stays).
    server.peer.close(1012)
    await tick(1000)
    expect([groups, follower.client.state]).toEqual([['u1'], 'online'])
    // The first check answers now, naming u2 (a sign-in since undone): the tab neither leaves u1's group nor rejoins.
    answer(jwt('u2'))
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state]).toEqual([['u1'], 'follower', 'online'])
  })
  // The tab led since: its socket's own token, asked later than the check, named the group's user.
  it('is ignored once the tab has led on its own socket’s newer token: it keeps leading in its group', async () => {
    const { server, leader, follower, groups, lateCheck } = await leaderAndFollower()
    const answer = await lateCheck()
    leader.client.close()
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state]).toEqual([['u1'], 'leader', 'online'])
    const sockets = server.peers.length
    // The old check answers now, naming u2 (a sign-in since undone): its live socket is not torn down ('user
    // changed') for a join that finds u1 again.
    answer(jwt('u2'))
    await tick(1000)
    expect([groups, follower.client.mode, follower.client.state, server.peers.length]).toEqual([['u1'], 'leader', 'online', sockets])
    expect(follower.log.statuses.map((e) => e.reason)).not.toContain('user changed')
  })
})

/**
 * A leader whose token provider failed steps down and queues again at its
 * retry, or as soon as it follows a leader online, whichever comes first:
 * queued as every follower is, it takes over when that leader's tab closes,
 * and from a leader that stops beating `stale` ms after its last word.
 */
describe('belfry/shared: a tab that stepped down on a failing token provider, then followed a leader online', () => {
  /** Tab a, whose provider failed once (its retry 20 s away), follows tab b, which leads online; `freezeB` silences b's channel. */
  async function steppedDownThenFollowing() {
    const server = startMockServer()
    const locks = new FakeLocks()
    let calls = 0
    const a = createClient(server, {
      // The join's call works, its socket's fails once (a session being renewed), and every later one works.
      token: () => {
        if (++calls === 2) throw new Error('session being renewed')
        return jwt('u1')
      },
      // The backoff after a few failures in a row (the default reaches 30 s).
      backoff: () => 20_000,
      connection: tabConnection(locks, 'a'),
    })
    a.client.on('error', () => {})
    a.client.connect()
    await tick(100)
    expect(a.log.statuses.map((s) => s.reason)).toContain('token or url failed')
    // Another tab of the user, whose provider works, takes over; tab a follows it, online.
    let frozen = false
    const b = createClient(server, {
      token: () => jwt('u1'),
      connection: sharedConnection({
        locks: locks.forTab('b'),
        BroadcastChannel: class extends FakeChannel {
          override postMessage(m: unknown) {
            if (!frozen) super.postMessage(m)
          }
        } as unknown as typeof BroadcastChannel,
      }),
    })
    b.client.connect()
    await tick(200)
    expect([a.client.mode, a.client.state, b.client.mode, b.client.state]).toEqual(['follower', 'online', 'leader', 'online'])
    const lead = () => ({ mode: a.client.mode, state: a.client.state, lockHolder: locks.holder(`belfry:${server.url}#u1`) ?? 'none' })
    return { b, lead, freezeB: () => (frozen = true) }
  }

  it('leads when that leader’s tab closes, not only when its old retry fires', async () => {
    const { b, lead } = await steppedDownThenFollowing()
    // The leading tab is closed: well within a `stale` (3 s) and two beats, tab a leads (its retry is 20 s away).
    b.client.close()
    await tick(6_000)
    expect(lead()).toEqual({ mode: 'leader', state: 'online', lockHolder: 'a' })
  })

  it('takes the lock from that leader once it stops beating, `stale` ms after its last word, not after its old retry', async () => {
    const { lead, freezeB } = await steppedDownThenFollowing()
    // The leading tab freezes (its channel silent): tab a, visible, takes over after `stale` (3 s) and a beat or two.
    freezeB()
    await tick(6_000)
    expect(lead()).toEqual({ mode: 'leader', state: 'online', lockHolder: 'a' })
  })
})

/**
 * A follower that is handed the lock (its leader's tab closed) tells its app `online → connecting` (mode leader)
 * synchronously inside socket.connect(), before lead() has armed `stepDown`. An app that closes the client on that
 * status event (e.g. it closes on any status once signed out) runs leave() with no `stepDown` to call: the new
 * socket is never closed and the lock is never released, by a tab that says it is closed.
 */
describe('belfry/shared: close() from a status handler as the tab starts to lead', () => {
  it('closes the socket it just opened and lets the lock go', async () => {
    const server = startMockServer()
    const locks = new FakeLocks()
    const a = createClient(server, { token: () => jwt('u1'), connection: tabConnection(locks, 'a') })
    a.client.connect()
    await tick(100)
    const b = createClient(server, { token: () => jwt('u1'), connection: tabConnection(locks, 'b') })
    let signedOut = false
    let closedOn: object | undefined
    b.client.on('status', (e) => {
      if (!signedOut || closedOn) return
      closedOn = { from: e.from, to: e.to, mode: e.mode }
      b.client.close()
    })
    b.client.connect()
    await tick(100)
    expect([a.client.mode, b.client.mode, b.client.state]).toEqual(['leader', 'follower', 'online'])
    expect(server.peers.length).toBe(1)

    // The user signs out: tab b's app closes its client at its next status event. Tab a closes: b gets the lock.
    signedOut = true
    a.client.close()
    await tick(2000)
    expect(b.client.state).toBe('closed')
    expect(closedOn).toEqual({ from: 'online', to: 'connecting', mode: 'leader' })
    // Tab b is closed: no socket of its is left open, and it holds no lock.
    expect(server.peers.filter((p) => !p.closed).length).toBe(0)
    expect(locks.holder(`belfry:${server.url}#u1`)).toBeUndefined()
  })
})

/**
 * Where the browser refuses Web Locks or BroadcastChannel (an opaque origin: a sandboxed iframe without
 * allow-same-origin; a document no longer fully active), as where they are missing, each tab has a socket of its
 * own (mode `solo`), and says why once on `error`. A refused lock request rejects at once, and not with an
 * AbortError (a steal): asking again would loop in microtasks, and no timer, event or paint would run again.
 */
describe('belfry/shared where the browser refuses Web Locks or BroadcastChannel', () => {
  const refused = () => new DOMException('Access to the Locks API is denied in this context.', 'SecurityError')

  it('Web Locks that refuse every request: one request, then a socket of its own, online (mode solo), told once', async () => {
    let requests = 0
    const locks = {
      request: () => {
        // The test's bound on a loop, past which it could not end: the manager stops answering.
        if (++requests > 1000) return new Promise(() => {})
        return Promise.reject(refused())
      },
      query: () => Promise.reject(refused()),
    } as unknown as LockManager
    const server = startMockServer()
    const { client, log } = createClient(server, {
      connection: sharedConnection({ locks, BroadcastChannel: FakeChannel as unknown as typeof BroadcastChannel }),
    })
    client.connect()
    await tick(5000)
    expect(requests).toBe(1)
    expect([client.state, client.mode, server.peers.length]).toEqual(['online', 'solo', 1])
    expect(log.statuses.at(-1)).toMatchObject({ to: 'online', mode: 'solo' })
    expect(log.errors.map((e) => [e.message, (e.cause as Error).name])).toEqual([
      ['Web Locks or BroadcastChannel refused: a socket of its own', 'SecurityError'],
    ])
  })

  it('a BroadcastChannel constructor that throws: no unhandled rejection, a socket of its own, online (mode solo), told once', async () => {
    const escaped: unknown[] = []
    const onRejection = (reason: unknown) => escaped.push(reason)
    process.on('unhandledRejection', onRejection)
    onTestFinished(() => {
      process.off('unhandledRejection', onRejection)
    })
    class DeniedChannel {
      constructor() {
        throw new DOMException('The operation is insecure.', 'SecurityError')
      }
    }
    const server = startMockServer()
    const { client, log } = createClient(server, {
      connection: sharedConnection({
        locks: new FakeLocks().forTab('a'),
        BroadcastChannel: DeniedChannel as unknown as typeof BroadcastChannel,
      }),
    })
    client.connect()
    await tick(5000)
    expect([client.state, client.mode, server.peers.length]).toEqual(['online', 'solo', 1])
    expect(log.errors.map((e) => [e.message, (e.cause as Error).name])).toEqual([
      ['Web Locks or BroadcastChannel refused: a socket of its own', 'SecurityError'],
    ])
    vi.useRealTimers()
    await new Promise((resolve) => setTimeout(resolve, 50)) // a real turn: Node tells unhandled rejections then
    expect(escaped.map(String)).toEqual([])
  })
})
