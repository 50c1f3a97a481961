/**
 * DynamoDB's item size (developer guide, "DynamoDB item sizes and formats"): attribute names plus
 * values; a number is 1 byte per two significant digits plus 1; a list or map is 3 bytes plus its
 * elements, each element 1 byte more. Storage is billed with 100 bytes of index overhead per item.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export const STORAGE_OVERHEAD_BYTES_PER_ITEM = 100;

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/** Bytes of a number attribute's value: leading and trailing zeros do not count. */
export function numberSize(text: string): number {
  const digits = text
    .replace(/^[-+]/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '');
  const significant = digits.replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, significant.length) / 2) + 1;
}

/** Bytes of one attribute value (its name not included). */
function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + utf8(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, element) => sum + 1 + valueSize(element), 0);
  if (value.M !== undefined) {
    return (
      3 +
      Object.entries(value.M).reduce((sum, [name, element]) => sum + 1 + utf8(name) + valueSize(element), 0)
    );
  }
  throw new Error('valueSize: an attribute value of an unknown type');
}

/** An item's size as DynamoDB counts it for capacity units and the 400 KB limit. */
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}
