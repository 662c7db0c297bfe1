import { signIn } from './auth.js';
import { h } from './dom.js';

/**
 * The sign-in form both pages show: username and password, the server's error in words, the
 * button disabled while a request is in flight. Calls `onSignedIn` once the session is open.
 */
export function signInForm(opts: { heading: Node[]; message?: string; autofocus?: boolean; onSignedIn: () => void }): { form: HTMLFormElement; username: HTMLInputElement } {
  const error = h('p', { class: 'error', role: 'alert' }, opts.message ?? '');
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, ...(opts.autofocus ? { autofocus: true } : {}), 'aria-label': 'Username' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'aria-label': 'Password' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'login', id: 'login-form' },
    ...opts.heading,
    h('label', {}, 'Username', username),
    h('label', {}, 'Password', password),
    submit, error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      await signIn(username.value.trim(), password.value);
      password.value = '';
      opts.onSignedIn();
    } catch (err) {
      error.textContent = (err as Error).message;
    } finally {
      submit.disabled = false;
    }
  });
  return { form, username };
}
