// A tag row's value as nostr_event_tags stores it (migration 0030's nostrx_tag_key), written out again here so that
// the tests check the database's form against their own reading of the rule rather than against itself: 64 lowercase
// hex digits as their 32 bytes, any other value as its UTF-8 bytes, with a zero byte after exactly 32 of them.
export function storedTagValue(value: string): Buffer {
  if (/^[0-9a-f]{64}$/.test(value)) return Buffer.from(value, 'hex');
  const bytes = Buffer.from(value, 'utf8');
  return bytes.length === 32 ? Buffer.concat([bytes, Buffer.from([0])]) : bytes;
}
