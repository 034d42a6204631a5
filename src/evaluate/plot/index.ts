/** Plotting for `hep-ml evaluate`: figures as SVG (real text) and PNG (glyph outlines, resvg). */
export {
  Figure,
  Panel,
  TAB10,
  colormap,
  contrastText,
  type AxisOptions,
  type ColormapName,
  type FigureOptions,
  type HeatmapOptions,
  type LegendLoc,
  type LegendOptions,
  type LineOptions,
  type PanelOptions,
  type ScaleKind,
  type StepOptions,
} from './figure.js';
export { initPng, svgToPng, svgToRaster, type Raster } from './png.js';
export { FONT_FAMILY, escapeXml, measure, outline, plainText, svgText, type Anchor, type RichText, type TextRun } from './text.js';
export {
  cleanNumber,
  formatDecade,
  formatLinearTicks,
  formatLogMinor,
  formatScientific,
  linearTicks,
  logTicks,
  niceStep,
  type LogTicks,
} from './ticks.js';
