/** Small helpers for writing SVG by hand, and rasterising it with sharp (librsvg; no browser). */
import sharp from 'sharp';

/** The font stack used for all text; librsvg resolves it through fontconfig (DejaVu Sans on most Linux systems). */
export const FONT = "'DejaVu Sans', 'Liberation Sans', Arial, Helvetica, sans-serif";

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A number short enough for an attribute (2 decimals are plenty at screen resolution). */
export function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

export type Attrs = Record<string, string | number | undefined>;

function attrs(a: Attrs): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? fmt(v) : escapeXml(v!)}"`)
    .join('');
}

/** `<name attrs>children</name>`, or self-closing without children. */
export function el(name: string, a: Attrs, ...children: string[]): string {
  return children.length === 0 ? `<${name}${attrs(a)}/>` : `<${name}${attrs(a)}>${children.join('')}</${name}>`;
}

export function text(x: number, y: number, content: string, a: Attrs = {}): string {
  return el('text', { x, y, 'font-family': FONT, 'font-size': 12, fill: '#222', ...a }, escapeXml(content));
}

export function svgDocument(width: number, height: number, body: string[], background = '#ffffff'): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}">` +
    el('rect', { x: 0, y: 0, width: Math.ceil(width), height: Math.ceil(height), fill: background }) +
    body.join('') +
    '</svg>\n'
  );
}

/** Rasterises an SVG document to PNG bytes at its own pixel size. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 }).png({ compressionLevel: 6 }).toBuffer();
}
