/** Colours shared by the pictures so that one occlusion level has one hue everywhere. */

export interface LevelStyle {
  /** Bright variant, readable on top of a photo. */
  onImage: string;
  /** Darker variant, readable on a white plot. */
  onWhite: string;
  label: string;
}

/** KITTI occlusion levels (devkit: 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown). */
export const OCCLUSION_STYLES: Readonly<Record<number, LevelStyle>> = {
  0: { onImage: '#29b6ff', onWhite: '#1f6fb4', label: 'fully visible' },
  1: { onImage: '#ffc400', onWhite: '#e08600', label: 'partly occluded' },
  2: { onImage: '#ff3366', onWhite: '#d62728', label: 'largely occluded' },
  3: { onImage: '#d0d0d0', onWhite: '#7f7f7f', label: 'unknown' },
};

export const UNKNOWN_STYLE: LevelStyle = { onImage: '#d0d0d0', onWhite: '#7f7f7f', label: 'not given' };

export function occlusionStyle(level: number | undefined): LevelStyle {
  return level === undefined ? UNKNOWN_STYLE : (OCCLUSION_STYLES[level] ?? UNKNOWN_STYLE);
}

export const DIFFICULTY_COLORS: Readonly<Record<string, string>> = {
  easy: '#2ca02c',
  moderate: '#e08600',
  hard: '#d62728',
  none: '#7f7f7f',
};

export const CLEAN_COLOR = '#1f6fb4';
export const NOISY_COLOR = '#d62728';

/** A qualitative palette (Tableau 10) for series without a meaning of their own. */
export const SERIES_COLORS = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
];
