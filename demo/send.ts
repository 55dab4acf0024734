import type { NotificationClient } from 'belfry'
import type { DevServer } from './dev.js'
import { byTestId, describe, el, refusedTopic } from './dom.js'

/** The send form (publishing through the HTTP API) and the topic subscriptions. */
export function createSend(client: NotificationClient, dev: DevServer, report: (error: unknown) => void): void {
  const form = byTestId('send-form', HTMLFormElement)
  const target = byTestId('send-target', HTMLSelectElement)
  const to = byTestId('send-to', HTMLInputElement)
  const toField = document.getElementById('send-to-field') ?? to
  const toLabel = document.getElementById('send-to-label') ?? to
  const title = byTestId('send-title', HTMLInputElement)
  const body = byTestId('send-body', HTMLTextAreaElement)
  const priority = byTestId('send-priority', HTMLSelectElement)
  const send = byTestId('send', HTMLButtonElement)
  const result = byTestId('send-result', HTMLElement)

  const showTarget = () => {
    const needed = target.value === 'user' || target.value === 'topic'
    const topic = target.value === 'topic'
    toField.hidden = !needed
    to.required = needed // only while shown: a hidden required field would block the form
    to.maxLength = topic ? 128 : 64
    toLabel.textContent = topic ? 'Topic' : 'User id'
    to.placeholder = topic ? 'deploys' : 'bob'
  }
  target.addEventListener('change', showTarget)
  showTarget()

  const audience = (): Record<string, unknown> => {
    switch (target.value) {
      case 'user':
        return { userId: to.value.trim() }
      case 'topic':
        return { topic: to.value.trim() }
      case 'broadcast':
        return { broadcast: true }
      default:
        return { userId: dev.user }
    }
  }

  const say = (text: string, ok: boolean) => {
    result.textContent = text
    result.dataset.ok = String(ok)
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault()
    send.disabled = true
    say('Sending…', true)
    dev
      .publish({ ...audience(), title: title.value, body: body.value, priority: priority.value })
      .then(
        (r) => (r.ok ? say(`Sent to ${r.recipients} ${r.recipients === 1 ? 'recipient' : 'recipients'}`, true) : say(r.message, false)),
        (error: unknown) => say(describe(error), false),
      )
      .finally(() => {
        send.disabled = false
      })
  })

  // Topics: client.subscribe() returns the function that unsubscribes.
  const subscribeForm = byTestId('subscribe-form', HTMLFormElement)
  const topicInput = byTestId('topic-input', HTMLInputElement)
  const chips = byTestId('topics', HTMLUListElement)
  const empty = byTestId('topics-empty', HTMLElement)
  /** Each chip's topic, with the function that unsubscribes and the chip. */
  const topics = new Map<string, { stop: () => void; chip: HTMLLIElement }>()
  const showTopics = () => {
    empty.hidden = topics.size > 0
  }
  const remove = (topic: string) => {
    const shown = topics.get(topic)
    if (!shown) return
    shown.stop()
    topics.delete(topic)
    shown.chip.remove()
    showTopics()
  }

  const add = (topic: string) => {
    if (topic === '' || topics.has(topic)) return
    const button = el(
      'button',
      { type: 'button', class: 'chip-remove', 'data-testid': 'unsubscribe', 'aria-label': `Unsubscribe from ${topic}` },
      '×',
    )
    const chip = el('li', { class: 'chip', 'data-testid': 'topic', 'data-topic': topic }, el('span', {}, `#${topic}`), button)
    topics.set(topic, { stop: client.subscribe(topic), chip })
    button.addEventListener('click', () => {
      remove(topic)
      topicInput.focus()
    })
    chips.append(chip)
    showTopics()
  }
  // A topic the server refused: the client dropped it and reports it on `error` (the error line shows it); its chip
  // goes, the others stay.
  client.on('error', (error) => {
    const topic = refusedTopic(error)
    if (topic !== undefined) remove(topic)
  })
  subscribeForm.addEventListener('submit', (e) => {
    e.preventDefault()
    add(topicInput.value.trim())
    topicInput.value = ''
  })
  // The user's subscriptions as the server has them (made on any page or device, before this load): shown, and
  // subscribed again through this client (a no-op on the server) so that the chip's × ends them.
  dev.topics().then((saved) => {
    for (const topic of saved) add(topic)
  }, report)
}
