import { useBelfryClient, useNotificationEvent } from 'belfry/react'
import { type FormEvent, useEffect, useState } from 'react'
import type { DevServer } from '../dev.js'
import { describe, refusedTopic } from '../dom.js'

type Target = 'me' | 'user' | 'topic' | 'broadcast'

/** The send form: publishes through the HTTP API with the dev key, as a backend would. */
export function Send({ dev }: { dev: DevServer }) {
  const [target, setTarget] = useState<Target>('me')
  const [to, setTo] = useState('')
  const [priority, setPriority] = useState('medium')
  const [title, setTitle] = useState('Hello')
  const [body, setBody] = useState('Sent from the belfry demo page (React).')
  const [result, setResult] = useState<{ text: string; ok: boolean }>({ text: '', ok: true })
  const [sending, setSending] = useState(false)
  const needsTo = target === 'user' || target === 'topic'

  const audience = (): Record<string, unknown> => {
    switch (target) {
      case 'user':
        return { userId: to.trim() }
      case 'topic':
        return { topic: to.trim() }
      case 'broadcast':
        return { broadcast: true }
      default:
        return { userId: dev.user }
    }
  }

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setSending(true)
    setResult({ text: 'Sending…', ok: true })
    dev
      .publish({ ...audience(), title, body, priority })
      .then(
        (r) =>
          setResult(
            r.ok
              ? { text: `Sent to ${r.recipients} ${r.recipients === 1 ? 'recipient' : 'recipients'}`, ok: true }
              : { text: r.message, ok: false },
          ),
        (error: unknown) => setResult({ text: describe(error), ok: false }),
      )
      .finally(() => setSending(false))
  }

  return (
    <section className="card" aria-labelledby="send-heading">
      <h2 id="send-heading">Send a notification</h2>
      <form className="send" data-testid="send-form" onSubmit={submit}>
        <div className="row">
          <div className="field">
            <label htmlFor="send-target">To</label>
            <select id="send-target" data-testid="send-target" value={target} onChange={(e) => setTarget(e.target.value as Target)}>
              <option value="me">me</option>
              <option value="user">a user</option>
              <option value="topic">a topic</option>
              <option value="broadcast">everyone</option>
            </select>
          </div>
          <div className="field grow" hidden={!needsTo}>
            <label htmlFor="send-to">{target === 'topic' ? 'Topic' : 'User id'}</label>
            <input
              id="send-to"
              data-testid="send-to"
              value={to}
              onChange={(e) => setTo(e.target.value)}
              required={needsTo}
              maxLength={target === 'topic' ? 128 : 64}
              placeholder={target === 'topic' ? 'deploys' : 'bob'}
              autoComplete="off"
            />
          </div>
          <div className="field">
            <label htmlFor="send-priority">Priority</label>
            <select id="send-priority" data-testid="send-priority" value={priority} onChange={(e) => setPriority(e.target.value)}>
              <option value="low">low</option>
              <option value="medium">medium</option>
              <option value="high">high</option>
            </select>
          </div>
        </div>
        <div className="field">
          <label htmlFor="send-title">Title</label>
          <input
            id="send-title"
            data-testid="send-title"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            maxLength={256}
            autoComplete="off"
            required
          />
        </div>
        <div className="field">
          <label htmlFor="send-body">Body</label>
          <textarea id="send-body" data-testid="send-body" rows={3} value={body} onChange={(e) => setBody(e.target.value)} />
        </div>
        <div className="row end">
          <p className="result" data-testid="send-result" data-ok={result.ok} role="status">
            {result.text}
          </p>
          <button type="submit" data-testid="send" disabled={sending}>
            Send
          </button>
        </div>
      </form>
    </section>
  )
}

/** Topics, through the client itself (useBelfryClient): subscribe() returns the function that unsubscribes. */
export function Topics({ dev, report }: { dev: DevServer; report: (error: unknown) => void }) {
  const client = useBelfryClient()
  const [topics, setTopics] = useState<string[]>([])
  const [input, setInput] = useState('')
  // Leaving the page does not unsubscribe: a subscription is the user's, kept by the server (see the README).
  const [stops] = useState(() => new Map<string, () => void>())

  const changed = () => setTopics([...stops.keys()])
  const add = (topic: string) => {
    if (!client || topic === '' || stops.has(topic)) return
    stops.set(topic, client.subscribe(topic))
    changed()
  }
  // The user's subscriptions as the server has them (made on any page or device, before this load, or before the
  // provider made this client): shown, and subscribed again through this client (a no-op on the server) so that
  // the chip's × ends them.
  // biome-ignore lint/correctness/useExhaustiveDependencies: once per client; add() is remade each render
  useEffect(() => {
    if (!client) return
    // A new client: the chips subscribe through it (the last one's stops are the closed client's).
    const shown = [...stops.keys()]
    stops.clear()
    for (const topic of shown) add(topic)
    let live = true
    dev.topics().then((saved) => {
      if (live) for (const topic of saved) add(topic)
    }, report)
    return () => {
      live = false
    }
  }, [client, dev])

  // A topic the server refused: the client dropped it and reports it on `error` (the error line shows it); its chip
  // goes, the others stay.
  useNotificationEvent('error', (error) => {
    const topic = refusedTopic(error)
    if (topic !== undefined && stops.delete(topic)) changed()
  })

  const subscribe = (e: FormEvent) => {
    e.preventDefault()
    add(input.trim())
    setInput('')
  }
  const unsubscribe = (topic: string) => {
    stops.get(topic)?.()
    stops.delete(topic)
    changed()
  }

  return (
    <section className="card" aria-labelledby="topics-heading">
      <h2 id="topics-heading">Topics</h2>
      <form className="row" data-testid="subscribe-form" onSubmit={subscribe}>
        <label className="visually-hidden" htmlFor="topic-input">
          Topic
        </label>
        <input
          id="topic-input"
          className="grow"
          data-testid="topic-input"
          placeholder="a topic, e.g. deploys"
          maxLength={128}
          autoComplete="off"
          required
          value={input}
          onChange={(e) => setInput(e.target.value)}
        />
        <button type="submit" className="secondary" data-testid="subscribe" title="Subscribe to topic" disabled={!client}>
          Subscribe
        </button>
      </form>
      <ul className="chips" data-testid="topics" aria-label="Subscribed topics">
        {topics.map((topic) => (
          <li key={topic} className="chip" data-testid="topic" data-topic={topic}>
            <span>#{topic}</span>
            <button
              type="button"
              className="chip-remove"
              data-testid="unsubscribe"
              aria-label={`Unsubscribe from ${topic}`}
              onClick={() => unsubscribe(topic)}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
      <p className="muted small" data-testid="topics-empty" hidden={topics.length > 0}>
        Not subscribed to any topic.
      </p>
    </section>
  )
}
