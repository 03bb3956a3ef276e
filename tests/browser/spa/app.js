// The SmartBudget frontend's auth behaviour (frontend/src/shared at 2517c9b) in plain JS: the same
// endpoints, bodies and answers it reads; axios's withCredentials and JSON Content-Type (so every
// call is preflighted, as there); on a 401 outside /auth/ one refresh through the cookie, then a
// retry, or a logout when the refresh is refused.
'use strict'

const API = window.API_BASE
const $ = (id) => document.getElementById(id)

function log(text) {
  const li = document.createElement('li')
  li.textContent = text
  $('log').appendChild(li)
}

async function call(method, path, body) {
  const init = {
    method,
    credentials: 'include',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
  }
  if (body !== undefined) init.body = JSON.stringify(body)
  const res = await fetch(API + path, init)
  let data = null
  try {
    data = await res.json()
  } catch (_) {}
  log(`${method} ${path} ${res.status}`)
  if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status, data })
  return data
}

// axios.config.ts: refresh once on 401 (not for /auth/ calls), retry, or log out on a refused refresh.
let refreshing = null
async function api(method, path, body) {
  try {
    return await call(method, path, body)
  } catch (e) {
    if (path.startsWith('/auth/') || e.status !== 401) throw e
    refreshing = refreshing || call('POST', '/auth/refresh').then(() => 'ok', (err) => (err.status === 401 ? 'logout' : 'error'))
    const result = await refreshing
    refreshing = null
    if (result === 'ok') return call(method, path, body)
    if (result === 'logout') await logoutHelper()
    throw e
  }
}

async function logoutHelper() {
  try {
    await call('POST', '/auth/logout')
  } catch (_) {}
  location.replace('/auth/sign-in')
}

function show(id) {
  for (const s of ['sign-in', 'link', 'main']) $(s).hidden = s !== id
  $('page').textContent = id
}

function signIn() {
  show('sign-in')
  const email = () => $('email').value.trim().toLowerCase()
  $('continue').onclick = async () => {
    const res = await call('POST', '/auth/verify-email', { email: email() })
    if (res.action === 'sign_in') {
      $('email-step').hidden = true
      $('password-step').hidden = false
    } else if (res.action === 'sign_up' || res.action === 'resetPassword') {
      $('check-email').hidden = false
      $('check-email').textContent = res.action
    }
  }
  $('sign-in-button').onclick = async () => {
    $('sign-in-error').textContent = ''
    try {
      await call('POST', '/auth/login', { email: email(), password: $('password').value })
      await api('GET', '/user/me')
      location.assign('/main')
    } catch (e) {
      $('sign-in-error').textContent = String(e.status)
    }
  }
  $('forgot').onclick = async () => {
    const res = await call('POST', '/auth/reset-password', { email: email() })
    if (res.status === 'success') {
      $('check-email').hidden = false
      $('check-email').textContent = res.action
    }
  }
}

// useVerifyLinkFlow.ts: check the link, then complete registration or the reset.
async function emailLink(kind) {
  show('link')
  const q = new URLSearchParams(location.search)
  const email = (q.get('email') || '').trim().toLowerCase()
  const token = (q.get('token') || '').trim()
  try {
    const res = await call('GET', `/auth/verify-link?${new URLSearchParams({ email, token, tokenType: kind })}`)
    if (res.status !== 'success') throw new Error('not verified')
  } catch (_) {
    $('link-state').textContent = 'wrong link'
    return
  }
  $('link-state').textContent = 'verified'
  const form = kind === 'reset' ? $('reset-form') : $('registration-form')
  form.hidden = false
  form.onsubmit = async (ev) => {
    ev.preventDefault()
    const res =
      kind === 'reset'
        ? await call('POST', '/auth/complete-reset', { email, token, newPassword: $('new-password').value })
        : await call('POST', '/auth/complete-registration', {
            email,
            token,
            password: $('reg-password').value,
            name: $('reg-name').value,
            country: $('reg-country').value,
          })
    if (res.status === 'success' && res.action === 'completeRegistration') location.assign('/main')
    if (res.status === 'success' && res.action === 'completeReset') location.assign('/auth/sign-in')
  }
}

// A protected page: the user (GET /user/me, rewritten by the gateway to /auth/me) and a service
// behind the gateway's auth_request.
async function main() {
  show('main')
  $('logout').onclick = logoutHelper
  try {
    const me = await api('GET', '/user/me')
    $('me').textContent = me.email
    const goals = await api('GET', '/goals')
    $('goals').textContent = goals.userId
  } catch (_) {}
}

// Used from other origins by the test: a credentialed read the way the app reads (refreshing on a
// 401), and a "simple" (not preflighted) cross-site POST as a CSRF attack would send it.
window.probeRead = (path) =>
  api('GET', path).then(
    (data) => `ok ${JSON.stringify(data)}`,
    (e) => (e.status ? `status ${e.status}` : `blocked ${e.name}`),
  )
window.probeSimplePost = (path) =>
  fetch(API + path, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '' }).then(
    (r) => `sent ${r.type}`,
    (e) => `failed ${e.name}`,
  )

const routes = {
  '/auth/sign-in': signIn,
  '/auth/registration': () => emailLink('verification'),
  '/auth/reset-password': () => emailLink('reset'),
  '/main': main,
}
;(routes[location.pathname] || (() => show('none')))()
