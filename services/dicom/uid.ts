/**
 * UID syntax of PS3.5 §9.1: components of digits separated by single dots, at most 64 characters,
 * no empty component, no leading zero in a component of more than one digit. One trailing NUL
 * (the UI padding byte) is allowed; any other NUL (a string cut short) is not.
 */
const UID_COMPONENTS = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export const MAX_UID_LENGTH = 64;

export function isValidUid(value: string): boolean {
  const uid = value.endsWith('\0') ? value.slice(0, -1) : value;
  return uid.length > 0 && uid.length <= MAX_UID_LENGTH && UID_COMPONENTS.test(uid);
}
