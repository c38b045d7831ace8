/** Addresses that never leave this machine: 127.0.0.0/8, ::1 and the name localhost. */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address === '[::1]' || address.toLowerCase() === 'localhost';
}
