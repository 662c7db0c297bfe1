/**
 * A UID per PS3.5 §9.1: at most 64 characters; components of digits separated by single dots; no
 * empty component; no leading zero in a component of more than one digit. ("." and ".." are not UIDs.)
 */
export function isValidUid(uid: string): boolean {
  if (uid.length === 0 || uid.length > 64) return false;
  return uid.split('.').every((part) => /^(0|[1-9][0-9]*)$/.test(part));
}
