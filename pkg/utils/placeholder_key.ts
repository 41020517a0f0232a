/**
 * Whether an API key is a template's placeholder rather than a key: `sk-replace-me` (our `.env.example`
 * files), `your-api-key`, `changeme`, `sk-...`, `<key>`, `xxxx`. `compozy dev` warns about such keys at
 * start; the runtime refuses them before sending a request that could only fail (with a 401, or a DNS error
 * offline).
 *
 * @example
 * ```ts
 * import { isPlaceholderKey } from "./placeholder_key.ts";
 * isPlaceholderKey("sk-replace-me"); // true
 * ```
 */
export function isPlaceholderKey(value: string): boolean {
  return PLACEHOLDER.test(value);
}

const PLACEHOLDER = /replace[-_ ]?me|your[-_ ]?(api[-_ ]?)?key|change[-_ ]?me|^sk-\.\.\.$|^<.*>$|^x{3,}$/i;
