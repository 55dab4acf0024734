#!/usr/bin/env node
// Finds a Chromium for the browser end-to-end tests and prints its path.
// Order: CHROME_PATH, then the usual install locations. With none found, where
// Debian's apt-get can be used as root, it installs the `chromium` package;
// otherwise it fails with what to install. No test tool downloads a browser.
import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { pathToFileURL } from 'node:url'

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/snap/bin/chromium',
]

const executable = (path) => {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function findChromium() {
  const fromEnv = process.env.CHROME_PATH
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv
    throw new Error(`CHROME_PATH=${fromEnv} is not an executable file`)
  }
  return CANDIDATES.find(executable)
}

function install() {
  const root = process.getuid?.() === 0
  let aptGet = false
  try {
    execFileSync('apt-get', ['--version'], { stdio: 'ignore' })
    aptGet = true
  } catch {}
  if (!root || !aptGet) {
    throw new Error(
      'No Chromium found for the browser tests. Install one (Debian/Ubuntu: `sudo apt-get install -y chromium`) ' +
        'or set CHROME_PATH to a Chromium or Chrome executable.',
    )
  }
  process.stderr.write('No Chromium found: installing Debian package `chromium` (apt-get)…\n')
  // Waits for the dpkg lock instead of failing when another apt-get holds it (a fresh machine's own updates).
  const lock = ['-o', 'DPkg::Lock::Timeout=300']
  execFileSync('apt-get', [...lock, 'update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'] })
  execFileSync('apt-get', [...lock, 'install', '-y', '-qq', 'chromium'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    let path = findChromium()
    if (!path) {
      install()
      path = findChromium()
      if (!path) throw new Error('apt-get installed `chromium`, but no executable was found at the usual paths; set CHROME_PATH.')
    }
    process.stdout.write(`${path}\n`)
  } catch (error) {
    process.stderr.write(`${error.message}\n`)
    process.exit(1)
  }
}
