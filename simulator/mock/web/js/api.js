// REST calls to the mock's HTTP side (same origin as the pages).

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.user_message || error.developer_message || `HTTP ${status}`);
    this.status = status;
    this.code = error.error_code;
    this.developerMessage = error.developer_message;
  }
}

/** fetch JSON; headers: {key} for x-ultracart-simple-key or {jwt} for Authorization: Bearer. */
export async function api(method, path, { body, key, jwt, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers["x-ultracart-simple-key"] = key;
  else if (jwt) headers.Authorization = `Bearer ${jwt}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    signal,
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const REST = "/rest/v2";
