/** Small helpers: the DOM's (the demo uses plain DOM APIs and never innerHTML), and what the client's errors say. */
import { ProtocolError } from 'belfry'

/** The element matching `selector`, checked to be a `type`; throws when the page lacks it. */
export function $<T extends Element>(selector: string, type: abstract new () => T, root: ParentNode = document): T {
  const found = root.querySelector(selector)
  if (!(found instanceof type)) throw new Error(`demo: missing ${selector}`)
  return found
}

/** The element with `data-testid="id"`. */
export const byTestId = <T extends Element>(id: string, type: abstract new () => T, root: ParentNode = document): T =>
  $(`[data-testid="${id}"]`, type, root)

/** Creates an element with attributes and children; strings become text nodes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  node.append(...children)
  return node
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
const dated = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })

/** A `<time>` for an ISO timestamp: the clock time today, the date and time before. */
export function timeElement(iso: string): HTMLTimeElement {
  const date = new Date(iso)
  const valid = !Number.isNaN(date.getTime())
  const today = valid && date.toDateString() === new Date().toDateString()
  const text = valid ? (today ? clock : dated).format(date) : ''
  return el('time', { datetime: iso, title: valid ? date.toLocaleString() : '' }, text)
}

/** The message of anything thrown, with its cause's (why a token provider failed is the cause of the client's error). */
export const describe = (error: unknown): string =>
  error instanceof Error
    ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}${error.cause === undefined ? '' : ` (${describe(error.cause)})`}`
    : String(error)

/**
 * The topic of a subscription the server refused (`forbidden`, `topic_too_long`, `bad_topic`,
 * `too_many_subscriptions`), which the client has dropped, from its `error` event: a ProtocolError with the code
 * and the `topic`. Undefined for any other error, `internal` too: a topic whose check failed is kept, and sent
 * again at the next auth.
 */
export function refusedTopic(error: unknown): string | undefined {
  return error instanceof ProtocolError ? error.topic : undefined
}
