const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
const dated = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })

/** A `<time>` for an ISO timestamp: the clock time today, the date and time before (as the vanilla page shows it). */
export function Time({ iso }: { iso: string }) {
  const date = new Date(iso)
  const valid = !Number.isNaN(date.getTime())
  const today = valid && date.toDateString() === new Date().toDateString()
  return (
    <time dateTime={iso} title={valid ? date.toLocaleString() : ''}>
      {valid ? (today ? clock : dated).format(date) : ''}
    </time>
  )
}
