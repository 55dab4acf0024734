import type { Notification, NotificationClient, ReadEvent } from 'belfry'
import { byTestId, describe, el, timeElement } from './dom.js'

const PAGE = 10

/** The bell with its unread badge, and the inbox panel it opens. */
export function createInbox(client: NotificationClient, report: (error: unknown) => void): void {
  const bell = byTestId('bell', HTMLButtonElement)
  const badge = byTestId('badge', HTMLElement)
  const panel = byTestId('inbox', HTMLElement)
  const list = byTestId('inbox-list', HTMLUListElement)
  const note = byTestId('inbox-note', HTMLElement)
  const loadMore = byTestId('load-more', HTMLButtonElement)
  const markAll = byTestId('mark-all', HTMLButtonElement)
  const wrap = bell.parentElement ?? panel

  /** The items shown, by id; the list keeps them newest (highest seq) first. */
  const shown = new Map<string, { seq: number; li: HTMLLIElement }>()
  /** `before` for the next page; undefined once the last page is in. */
  let next: number | undefined
  /** Bumped on every (re)load, so an answer for an older load is dropped. */
  let generation = 0
  /** The first page's load since the panel opened: a failed one (offline, it times out) is made again once online. */
  let first: 'loading' | 'loaded' | 'failed' = 'loading'

  const showCount = (count: number) => {
    badge.textContent = String(count)
    badge.hidden = count === 0
    bell.setAttribute('aria-label', `Notifications, ${count} unread`)
    markAll.disabled = count === 0
  }

  const say = (text: string) => {
    note.textContent = text
    note.hidden = text === ''
  }

  const setRead = (li: HTMLLIElement) => {
    li.dataset.read = 'true'
    for (const gone of li.querySelectorAll('[data-testid="mark-read"], .unread-label')) gone.remove()
  }

  const item = (n: Notification): HTMLLIElement => {
    const li = el(
      'li',
      {
        class: 'inbox-item',
        'data-testid': 'inbox-item',
        'data-read': String(n.read),
        'data-priority': n.priority,
        'data-seq': String(n.seq),
      },
      el(
        'div',
        { class: 'inbox-item-head' },
        el('span', { class: 'inbox-dot', 'aria-hidden': 'true' }),
        el('strong', { class: 'inbox-title', 'data-testid': 'inbox-title' }, n.title),
        timeElement(n.timestamp),
      ),
      el('p', { class: 'inbox-body', 'data-testid': 'inbox-body' }, n.body),
    )
    if (!n.read) {
      li.append(el('span', { class: 'visually-hidden unread-label' }, 'Unread.'))
      const button = el('button', { type: 'button', class: 'link-button', 'data-testid': 'mark-read' }, 'Mark read')
      button.addEventListener('click', () => {
        button.disabled = true
        client.markRead(n.id).catch((error: unknown) => {
          button.disabled = false
          report(error)
        })
      })
      li.append(button)
    }
    return li
  }

  /** Inserts in seq order; `live` ones older than the loaded pages wait for "Load more". */
  const insert = (n: Notification, live: boolean) => {
    if (shown.has(n.id) || (live && next !== undefined && n.seq < next)) return
    const li = item(n)
    // Before the newest of those older than it (the Map keeps the order they were shown in, not seq order).
    const after = [...shown.values()].sort((a, b) => b.seq - a.seq).find((s) => s.seq < n.seq)
    list.insertBefore(li, after?.li ?? null)
    shown.set(n.id, { seq: n.seq, li })
    // Until the first page is in, the note says it is loading or why it failed: the live ones are not the inbox.
    if (first === 'loaded') say('')
  }

  /** Loads the next page; `reload`: the first page instead, as `keep` is shown (what came live meanwhile) or anew. */
  const load = async (reload: boolean, keep = false) => {
    if (reload) {
      generation++
      first = 'loading'
      if (!keep) {
        shown.clear()
        list.replaceChildren()
      }
      next = undefined
    }
    const mine = generation
    loadMore.disabled = true
    say(reload && shown.size === 0 ? 'Loading…' : '')
    try {
      const page = await client.history(reload || next === undefined ? { limit: PAGE } : { before: next, limit: PAGE })
      if (mine !== generation) return
      for (const n of page.items) insert(n, false)
      next = page.next
      first = 'loaded'
      say(shown.size === 0 ? 'No notifications yet.' : '')
    } catch (error) {
      if (mine !== generation) return
      if (reload) first = 'failed'
      say(`Could not load the inbox: ${describe(error)}`)
    } finally {
      if (mine === generation) {
        loadMore.hidden = next === undefined
        loadMore.disabled = false
      }
    }
  }

  const open = (yes: boolean) => {
    panel.hidden = !yes
    bell.setAttribute('aria-expanded', String(yes))
    if (yes) void load(true)
    else generation++
  }

  bell.addEventListener('click', () => open(bell.getAttribute('aria-expanded') !== 'true'))
  loadMore.addEventListener('click', () => void load(false))
  markAll.addEventListener('click', () => {
    client.markAllRead().catch(report)
  })
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || panel.hidden) return
    open(false)
    bell.focus()
  })
  document.addEventListener('click', (e) => {
    const path = e.composedPath()
    if (!panel.hidden && !path.includes(wrap) && !path.some((t) => t instanceof HTMLElement && t.dataset.testid === 'toasts')) open(false)
  })

  client.on('unread', ({ count }) => showCount(count))
  client.on('notification', (n) => {
    if (!panel.hidden) insert(n, true)
  })
  client.on('status', (e) => {
    if (e.to !== 'online') return
    // The open panel's first page failed (opened offline, or while the server was down): loaded now, merged by id
    // with what came live meanwhile, which alone would pass for the whole inbox beside the badge's count.
    if (first === 'failed' && !panel.hidden) return void load(true, true)
    // Back online: what was read elsewhere while this page was away (no read event told it) shows as read. (With
    // none unread the server says so itself, as a read event; this covers some read of many.)
    if (e.from === 'connecting' || shown.size === 0) return
    client.history({ limit: 100 }).then((page) => {
      for (const n of page.items) if (n.read && shown.has(n.id)) setRead(shown.get(n.id)!.li)
    }, report)
  })
  client.on('read', (e: ReadEvent) => {
    const ids = new Set(e.ids)
    for (const [id, { seq, li }] of shown) if (e.all ? seq <= e.seq : ids.has(id)) setRead(li)
  })
  showCount(client.unreadCount)
}
