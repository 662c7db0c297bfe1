/** Signs a user in over real HTTP; returns the cookie header and the CSRF token for unsafe calls. */
export const PASSWORD = 'correct horse battery';

export async function login(url: string, username: string, password = PASSWORD) {
  const res = await fetch(`${url}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status}`);
  const cookie = /ft_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1];
  const { csrfToken } = await res.json() as { csrfToken: string };
  return { cookie: `ft_session=${cookie}`, csrfToken };
}

export type Session = Awaited<ReturnType<typeof login>>;
