import type { Notification, Priority } from 'belfry'
import { el, timeElement } from './dom.js'

/** How long a toast stays, not counting time under the pointer or focus. */
const LIFETIME_MS = 6000
/** Toasts on screen at once; older ones wait hidden until their own time is up. */
const MAX_VISIBLE = 4

const LABELS: Record<Priority, string> = { low: 'Low', medium: 'Medium', high: 'High' }

/** Shows notifications as toasts in `container` (a polite live region). */
export function createToasts(container: HTMLElement, more: HTMLElement): (n: Notification) => void {
  const live: HTMLElement[] = []

  /** Only the newest MAX_VISIBLE are shown, newest last; the rest are counted. */
  const layout = () => {
    const hidden = Math.max(0, live.length - MAX_VISIBLE)
    live.forEach((toast, i) => {
      toast.hidden = i < hidden
    })
    more.hidden = hidden === 0
    more.textContent = `+${hidden} earlier`
  }

  return (n) => {
    const close = el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×')
    const toast = el(
      'article',
      { class: 'toast', 'data-testid': 'toast', 'data-priority': n.priority, ...(n.priority === 'high' ? { role: 'alert' } : {}) },
      el(
        'header',
        { class: 'toast-head' },
        el('span', { class: 'priority', 'data-testid': 'toast-priority' }, LABELS[n.priority] ?? n.priority),
        ...(n.topic === undefined ? [] : [el('span', { class: 'topic' }, `#${n.topic}`)]),
        timeElement(n.timestamp),
        close,
      ),
      el('h3', { class: 'toast-title', 'data-testid': 'toast-title' }, n.title),
      el('p', { class: 'toast-body', 'data-testid': 'toast-body' }, n.body),
      el('span', { class: 'toast-life', 'aria-hidden': 'true' }),
    )
    toast.style.setProperty('--life', `${LIFETIME_MS}ms`)

    // One timer per toast, paused while the pointer or focus is on it.
    let remaining = LIFETIME_MS
    let started = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    const holds = new Set<string>()
    const run = () => {
      started = Date.now()
      timer = setTimeout(dismiss, remaining)
    }
    const hold = (why: string) => {
      if (holds.size === 0) {
        clearTimeout(timer)
        remaining -= Date.now() - started
        toast.classList.add('paused')
      }
      holds.add(why)
    }
    const release = (why: string) => {
      if (!holds.delete(why) || holds.size > 0) return
      toast.classList.remove('paused')
      run()
    }
    function dismiss() {
      clearTimeout(timer)
      const i = live.indexOf(toast)
      if (i === -1) return
      live.splice(i, 1)
      toast.remove()
      layout()
    }
    toast.addEventListener('mouseenter', () => hold('pointer'))
    toast.addEventListener('mouseleave', () => release('pointer'))
    toast.addEventListener('focusin', () => hold('focus'))
    toast.addEventListener('focusout', (e) => {
      if (!(e.relatedTarget instanceof Node && toast.contains(e.relatedTarget))) release('focus')
    })
    close.addEventListener('click', dismiss)

    live.push(toast)
    container.append(toast)
    layout()
    run()
  }
}
