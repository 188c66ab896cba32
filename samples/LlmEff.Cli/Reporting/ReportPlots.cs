using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ScottPlot;
using ScottPlot.TickGenerators;
using SkiaSharp;

namespace LlmEff.Cli.Reporting;

/// <summary>The two figures of the report, rendered with ScottPlot to PNG bytes.</summary>
/// <remarks>
/// Everything that affects the pixels (size, colours, fonts, axis limits, label positions) is fixed or computed
/// from the data, so the same report renders to the same image and the files diff cleanly between runs.
/// </remarks>
internal static class ReportPlots
{
    /// <summary>Width of every figure in pixels.</summary>
    public const int Width = 1000;

    /// <summary>Height of every figure in pixels.</summary>
    public const int Height = 600;

    /// <summary>Fraction of a run's steps the training-loss moving average spans.</summary>
    /// <remarks>Per-step loss of a small batch is noisy enough to hide the differences an ablation looks for.</remarks>
    public const double SmoothingFraction = 0.05;

    private const float TitleSize = 20;
    private const float AxisLabelSize = 16;
    private const float TickLabelSize = 13;
    private const float PointLabelSize = 14;

    private static readonly Color Ink = Color.FromHex("#222222");
    private static readonly Color KeyGray = Color.FromHex("#555555");

    /// <summary>A sans-serif family that exists here, or null to keep ScottPlot's choice.</summary>
    /// <remarks>
    /// ScottPlot's automatic choice falls back to a serif face on machines without its preferred fonts (e.g. a
    /// Debian image with only DejaVu), which looks out of place in a technical figure.
    /// </remarks>
    private static readonly string? FontName =
        new[] { "Segoe UI", "Helvetica Neue", "Helvetica", "Arial", "Liberation Sans", "DejaVu Sans", "Noto Sans" }.FirstOrDefault(FontExists);

    /// <summary>Below this many steps the second-half panel would show a handful of points; it is left out.</summary>
    private const int MinimumStepsForZoom = 20;

    /// <summary>Moving-average window for a run of <paramref name="steps"/> steps: 5% of them, at least one.</summary>
    public static int SmoothingWindow(int steps) => Math.Max(1, (int)Math.Round(steps * SmoothingFraction));

    /// <summary>Centred moving average of <paramref name="values"/> over <paramref name="window"/> points.</summary>
    /// <remarks>
    /// Centred rather than trailing so the smoothed curve does not lag behind the step it is drawn at; near the ends
    /// the window shrinks to the points that exist. Non-finite values (a diverged step) are left out of the means so a
    /// single NaN does not blank a whole window; a window without any finite value yields NaN.
    /// </remarks>
    public static double[] MovingAverage(IReadOnlyList<double> values, int window)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        var n = values.Count;
        var sums = new double[n + 1];
        var counts = new int[n + 1];
        for (var i = 0; i < n; i++)
        {
            var finite = double.IsFinite(values[i]);
            sums[i + 1] = sums[i] + (finite ? values[i] : 0);
            counts[i + 1] = counts[i] + (finite ? 1 : 0);
        }
        var before = (window - 1) / 2;
        var after = window - 1 - before;
        var result = new double[n];
        for (var i = 0; i < n; i++)
        {
            var from = Math.Max(0, i - before);
            var to = Math.Min(n, i + after + 1);
            var count = counts[to] - counts[from];
            result[i] = count == 0 ? double.NaN : (sums[to] - sums[from]) / count;
        }
        return result;
    }

    /// <summary>How the training curves of <paramref name="runs"/> are smoothed, in words, e.g. "mean of 10 steps (5%)".</summary>
    /// <param name="runs">Runs whose training losses are shown.</param>
    /// <param name="mean">Wording of the averaging, e.g. "mean of" or "a centred moving average over".</param>
    /// <param name="steps">Wording of the unit, e.g. "steps".</param>
    public static string SmoothingDescription(IReadOnlyList<RunResult> runs, string mean, string steps)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var percent = (SmoothingFraction * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";
        // Runs without training losses draw no line, so their window does not count.
        var windows = runs.Where(r => r.TrainLosses.Count > 0).Select(r => SmoothingWindow(r.TrainLosses.Count)).Distinct().ToArray();
        return windows switch
        {
            [1] => "per step, too few steps to smooth",
            [var w] => $"{mean} {w.ToString(CultureInfo.InvariantCulture)} {steps} ({percent})",
            _ => $"{mean} {percent} of the {steps}",
        };
    }

    /// <summary>Colour of the run at <paramref name="index"/>, the same in both figures.</summary>
    public static Color RunColor(int index) => new ScottPlot.Palettes.Category10().GetColor(index);

    /// <summary>Smoothed training loss against step, one line per run, with the held-out evaluations as markers.</summary>
    /// <remarks>
    /// Two panels: the whole run on a log axis, and the second half of it on a linear axis. Loss falls by an order of
    /// magnitude early on and then creeps, so on any single axis the late differences between runs, which are what an
    /// ablation is about, shrink to a few pixels. Runs too short for a meaningful second half get the first panel only.
    /// </remarks>
    public static byte[] LossCurves(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        // One line per model: the mean over its seeds, with a band from the lowest to the highest seed when it has several.
        var models = ModelSummary.Of(runs);
        var train = new List<(double[] Steps, double[] Losses)>();
        var heldOut = new List<(double[] Steps, double[] Losses)>();
        var bands = new List<(double[] Steps, double[] Low, double[] High)?>();
        foreach (var model in models)
        {
            var smoothed = model.Runs.Select(r => MovingAverage(r.TrainLosses, SmoothingWindow(r.TrainLosses.Count))).ToList();
            var length = smoothed.Min(c => c.Length);
            var mean = Enumerable.Range(0, length).Select(i => smoothed.Average(c => c[i])).ToArray();
            train.Add(Finite(Enumerable.Range(1, length).Select(s => (double)s), mean));
            var points = model.Runs.Min(r => r.HeldOutCurve.Count);
            heldOut.Add(Finite(model.Runs[0].HeldOutCurve.Take(points).Select(p => (double)p.Step),
                Enumerable.Range(0, points).Select(i => model.Runs.Average(r => r.HeldOutCurve[i].Loss))));
            bands.Add(model.Runs.Count < 2 || length == 0 ? null : (
                Enumerable.Range(1, length).Select(s => (double)s).ToArray(),
                Enumerable.Range(0, length).Select(i => smoothed.Min(c => c[i])).ToArray(),
                Enumerable.Range(0, length).Select(i => smoothed.Max(c => c[i])).ToArray()));
        }
        var all = train.Concat(heldOut).ToArray();
        var maxStep = all.SelectMany(s => s.Steps).DefaultIfEmpty(1).Max();
        var xMax = Math.Max(1, maxStep) * 1.02;

        using var whole = NewPlot();
        var values = all.SelectMany(s => s.Losses).ToArray();
        // Log only when the range is wide and positive; over a narrow range a linear axis reads better.
        var logScale = values.Length > 0 && values.Min() > 0 && values.Max() / values.Min() >= 3;
        AddLossSeries(whole, train, heldOut, bands, logScale ? Math.Log10 : v => v);
        whole.Axes.Title.Label.Text = "Training and held-out loss";
        whole.XLabel("training step");
        whole.YLabel(logScale ? "cross-entropy, nats/token (log scale)" : "cross-entropy, nats/token");
        whole.Axes.Bottom.TickGenerator = StepTicks();
        if (values.Length == 0)
        {
            whole.Axes.SetLimits(0, xMax, 0, 1);
            Notice(whole, "no finite training or held-out loss to show");
        }
        else if (logScale)
        {
            var (low, high) = Padded(Math.Log10(values.Min()), Math.Log10(values.Max()), 0.04);
            whole.Axes.SetLimits(0, xMax, low, high);
            whole.Axes.Left.TickGenerator = LogTicks(Math.Pow(10, low), Math.Pow(10, high));
        }
        else
        {
            var (low, high) = Padded(values.Min(), values.Max(), 0.05);
            whole.Axes.SetLimits(0, xMax, low, high);
        }

        var halfway = Math.Floor(maxStep / 2);
        var late = all.SelectMany(s => s.Steps.Zip(s.Losses)).Where(p => p.First >= halfway).Select(p => p.Second).ToArray();
        using var legend = Legend(models);
        if (maxStep < MinimumStepsForZoom || late.Length == 0)
            return Compose([whole], legend);

        using var zoom = NewPlot();
        AddLossSeries(zoom, train, heldOut, bands, v => v);
        zoom.Axes.Title.Label.Text = "Second half, linear scale";
        zoom.XLabel("training step");
        zoom.YLabel("cross-entropy, nats/token");
        zoom.Axes.Bottom.TickGenerator = StepTicks();
        // The zoomed range is small, so the default density labels every few thousandths and crowds the axis.
        zoom.Axes.Left.TickGenerator = new NumericAutomatic { TargetTickCount = 8 };
        var (zoomLow, zoomHigh) = Padded(late.Min(), late.Max(), 0.06);
        zoom.Axes.SetLimits(halfway, xMax, zoomLow, zoomHigh);
        return Compose([whole, zoom], legend);
    }

    private static void AddLossSeries(Plot plot, List<(double[] Steps, double[] Losses)> train,
        List<(double[] Steps, double[] Losses)> heldOut, List<(double[] Steps, double[] Low, double[] High)?> bands, Func<double, double> y)
    {
        for (var i = 0; i < train.Count; i++)
        {
            var color = RunColor(i);
            if (bands[i] is { } band)
            {
                var (low, high) = (band.Low.Select(y).ToArray(), band.High.Select(y).ToArray());
                // A diverged seed (or a zero on a log axis) gives no band rather than a broken one.
                if (low.Concat(high).All(double.IsFinite))
                {
                    var fill = plot.Add.FillY(band.Steps, low, high);
                    fill.FillColor = color.WithAlpha(0.2);
                    fill.LineWidth = 0;
                }
            }
            if (train[i].Steps.Length > 0)
            {
                var line = plot.Add.ScatterLine(train[i].Steps, train[i].Losses.Select(y).ToArray(), color);
                line.LineWidth = 2;
            }
            if (heldOut[i].Steps.Length > 0)
            {
                var points = plot.Add.Scatter(heldOut[i].Steps, heldOut[i].Losses.Select(y).ToArray(), color);
                points.LineWidth = 1.5f;
                points.LinePattern = LinePattern.Dashed;
                points.MarkerShape = MarkerShape.FilledCircle;
                points.MarkerSize = 8;
            }
        }
    }

    /// <summary>One entry per run plus a key to the two line styles, drawn as an image of its own.</summary>
    /// <remarks>
    /// Listing the line and the markers of every run separately would double the legend for no information. It is
    /// placed beside the panels rather than inside one because where the curves run depends on the data, so no corner
    /// of a data area is reliably empty; and it is shared because both panels show the same runs.
    /// </remarks>
    private static Image Legend(IReadOnlyList<ModelSummary> models)
    {
        using var plot = NewPlot();
        var smoothing = "training: " + SmoothingDescription(models.SelectMany(m => m.Runs).ToList(), "mean of", "steps");
        var seeds = models.Count == 0 ? 1 : models.Min(m => m.Runs.Count);
        for (var i = 0; i < models.Count; i++)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = models[i].Model, LineColor = RunColor(i), LineWidth = 3, MarkerShape = MarkerShape.None });
        if (seeds >= 2)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"mean of {seeds} seeds; band: lowest to highest seed", LineColor = KeyGray, LineWidth = 8, MarkerShape = MarkerShape.None });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = smoothing, LineColor = KeyGray, LineWidth = 2, MarkerShape = MarkerShape.None });
        plot.Legend.ManualItems.Add(new LegendItem
        {
            LabelText = "held-out evaluation",
            LineColor = KeyGray,
            LineWidth = 1.5f,
            LinePattern = LinePattern.Dashed,
            MarkerShape = MarkerShape.FilledCircle,
            MarkerFillColor = KeyGray,
            MarkerLineColor = KeyGray,
            MarkerSize = 8,
        });
        plot.Legend.FontSize = TickLabelSize;
        if (FontName is not null)
            plot.Legend.FontName = FontName;
        return plot.Legend.GetImage();
    }

    /// <summary>Renders <paramref name="panels"/> side by side with <paramref name="legend"/> on the right, as one PNG.</summary>
    private static byte[] Compose(IReadOnlyList<Plot> panels, Image legend)
    {
        const int legendMargin = 12;
        var legendWidth = Math.Min(legend.Width, Width / 3);
        var panelWidth = (Width - legendWidth - 2 * legendMargin) / panels.Count;
        using var surface = SKSurface.Create(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        surface.Canvas.Clear(SKColors.White);
        for (var i = 0; i < panels.Count; i++)
        {
            // Each panel gets a surface of its own: a plot clears the whole canvas it is given before drawing.
            using var panel = SKSurface.Create(new SKImageInfo(panelWidth, Height, SKColorType.Rgba8888, SKAlphaType.Premul));
            panels[i].Render(panel.Canvas, panelWidth, Height);
            using var image = panel.Snapshot();
            surface.Canvas.DrawImage(image, i * panelWidth, 0);
        }
        var left = Width - legendWidth - legendMargin;
        var top = (Height - legend.Height) / 2f;
        using (var paint = Paint.NewDisposablePaint())
            legend.Render(surface.Canvas, new PixelRect(left, left + legendWidth, top + legend.Height, top), paint, antiAlias: true);
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    /// <summary>Final held-out loss against KV-cache bytes per token, one labelled point per model at its mean over
    /// seeds, with a vertical bar over its 95% interval when it ran two seeds or more.</summary>
    public static byte[] LossVersusKvCache(IReadOnlyList<RunResult> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        using var plot = NewPlot();

        var models = ModelSummary.Of(runs);
        var points = new List<(Coordinates At, string Label, Color Color)>();
        var bars = new List<(double X, double Low, double High, Color Color)>();
        for (var i = 0; i < models.Count; i++)
        {
            var model = models[i];
            if (!double.IsFinite(model.HeldOutLoss.Mean)) continue;
            points.Add((new Coordinates(model.Runs[0].KvBytesPerToken, model.HeldOutLoss.Mean), model.Model, RunColor(i)));
            if (model.HeldOutLoss.HalfWidth is { } half && double.IsFinite(half))
                bars.Add((model.Runs[0].KvBytesPerToken, model.HeldOutLoss.Low, model.HeldOutLoss.High, RunColor(i)));
        }

        plot.Axes.Title.Label.Text = bars.Count > 0
            ? "Held-out loss vs KV cache (lower left is better; bars: 95% interval over seeds)"
            : "Held-out loss vs KV cache (lower left is better)";
        plot.XLabel("KV cache per token, bytes (bf16)");
        plot.YLabel("final held-out loss, nats/token");
        plot.Axes.Bottom.TickGenerator = new NumericAutomatic { LabelFormatter = Thousands };
        // Final losses of an ablation differ in the second or third decimal; the default density labels every step of that.
        plot.Axes.Left.TickGenerator = new NumericAutomatic { TargetTickCount = 8 };

        if (points.Count == 0)
        {
            plot.Axes.SetLimits(0, 1, 0, 1);
            Notice(plot, "no run has a finite held-out loss");
            return plot.GetImageBytes(Width, Height, ImageFormat.Png);
        }

        foreach (var (x, low, high, color) in bars)
        {
            var bar = plot.Add.Line(x, low, x, high);
            bar.LineColor = color;
            bar.LineWidth = 2.5f;
        }
        foreach (var (at, _, color) in points)
        {
            var marker = plot.Add.Marker(at, MarkerShape.FilledCircle, 14, color);
            // A white rim keeps coincident points (same KV size, nearly the same loss) distinguishable.
            marker.MarkerLineColor = Colors.White;
            marker.MarkerLineWidth = 1.5f;
        }

        // The x axis starts at zero so the horizontal distance between points reads as the saving; the extra room on
        // the right is for the labels of the largest caches.
        var xMax = Math.Max(1, points.Max(p => p.At.X)) * 1.3;
        var (yLow, yHigh) = Padded(points.Select(p => p.At.Y).Concat(bars.Select(b => b.Low)).Min(), points.Select(p => p.At.Y).Concat(bars.Select(b => b.High)).Max(), 0.15);
        plot.Axes.SetLimits(0, xMax, yLow, yHigh);

        // Label positions are chosen in pixels, so lay the figure out once to learn where each point lands.
        plot.RenderInMemory(Width, Height);
        PlacePointLabels(plot, points);

        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }

    /// <summary>Puts each label beside its point, spreading labels that would overlap into an ordered column.</summary>
    /// <remarks>
    /// Runs that keep the same number of KV streams share an x value and often nearly share a loss, so labels placed
    /// blindly beside each point land on top of one another. Overlapping labels are merged into clusters; a cluster is
    /// laid out as a column centred on the mean height of its points, in the vertical order of the points, so the
    /// k-th label from the top names the k-th point from the top. A label moved away from its point gets a thin leader
    /// line in the point's colour.
    /// </remarks>
    private static void PlacePointLabels(Plot plot, List<(Coordinates At, string Label, Color Color)> points)
    {
        const float gap = 10;
        const float spacing = 2;
        var dataRect = plot.LastRender.DataRect;
        var n = points.Count;
        var pixels = points.Select(p => plot.GetPixel(p.At)).ToArray();

        using var paint = Paint.NewDisposablePaint();
        var measure = new LabelStyle { FontSize = PointLabelSize };
        if (FontName is not null)
            measure.FontName = FontName;
        var sizes = points.Select(p => measure.Measure(p.Label, paint).Size).Select(s => (W: s.Width + 6, H: s.Height + 2)).ToArray();

        // Right of the point unless that would leave the data area (a long name on the rightmost point).
        var lefts = Enumerable.Range(0, n)
            .Select(i => pixels[i].X + gap + sizes[i].W <= dataRect.Right ? pixels[i].X + gap : pixels[i].X - gap - sizes[i].W)
            .ToArray();
        var tops = new float[n];
        PixelRect Rect(int i) => new(lefts[i], lefts[i] + sizes[i].W, tops[i] + sizes[i].H, tops[i]);

        void Layout(List<int> cluster)
        {
            cluster.Sort((a, b) => pixels[a].Y != pixels[b].Y ? pixels[a].Y.CompareTo(pixels[b].Y) : a.CompareTo(b));
            var height = cluster.Sum(i => sizes[i].H) + spacing * (cluster.Count - 1);
            var top = cluster.Average(i => pixels[i].Y) - height / 2;
            top = Math.Clamp(top, dataRect.Top, Math.Max(dataRect.Top, dataRect.Bottom - height));
            foreach (var i in cluster)
            {
                tops[i] = top;
                top += sizes[i].H + spacing;
            }
        }

        var clusters = Enumerable.Range(0, n).Select(i => new List<int> { i }).ToList();
        clusters.ForEach(Layout);
        // Each merge removes a cluster, so this ends after at most n - 1 merges.
        for (var merged = true; merged;)
        {
            merged = false;
            for (var a = 0; a < clusters.Count && !merged; a++)
            {
                for (var b = a + 1; b < clusters.Count && !merged; b++)
                {
                    if (!clusters[a].Any(i => clusters[b].Any(j => Overlaps(Rect(i), Rect(j)))))
                        continue;
                    clusters[a].AddRange(clusters[b]);
                    clusters.RemoveAt(b);
                    Layout(clusters[a]);
                    merged = true;
                }
            }
        }

        for (var i = 0; i < n; i++)
        {
            var rect = Rect(i);
            var text = plot.Add.Text(points[i].Label, plot.GetCoordinates(new Pixel(rect.Left + 3, rect.VerticalCenter)));
            text.LabelFontSize = PointLabelSize;
            if (FontName is not null)
                text.LabelFontName = FontName;
            text.LabelFontColor = Ink;
            text.LabelAlignment = Alignment.MiddleLeft;
            text.LabelBackgroundColor = Colors.White.WithAlpha(0.8);

            if (Math.Abs(rect.VerticalCenter - pixels[i].Y) > sizes[i].H / 2)
            {
                var end = new Pixel(rect.Left > pixels[i].X ? rect.Left : rect.Right, rect.VerticalCenter);
                var leader = plot.Add.Line(points[i].At, plot.GetCoordinates(end));
                leader.LineColor = points[i].Color.WithAlpha(0.8);
                leader.LineWidth = 1;
                plot.MoveToBack(leader);
            }
        }
    }

    private static bool Overlaps(PixelRect a, PixelRect b) =>
        a.Left < b.Right && b.Left < a.Right && a.Top < b.Bottom && b.Top < a.Bottom;

    /// <summary>A plain centred message in an otherwise empty figure, so it is not mistaken for a rendering failure.</summary>
    private static void Notice(Plot plot, string message)
    {
        var notice = plot.Add.Annotation(message, Alignment.MiddleCenter);
        notice.LabelFontSize = AxisLabelSize;
        notice.LabelFontColor = KeyGray;
        notice.LabelBackgroundColor = Colors.White;
        notice.LabelBorderColor = Colors.Transparent;
        notice.LabelShadowColor = Colors.Transparent;
        if (FontName is not null)
            notice.LabelFontName = FontName;
    }

    private static bool FontExists(string family)
    {
        // Some platforms answer with a fallback face rather than null, so compare the family it actually is.
        using var typeface = SKFontManager.Default.MatchFamily(family);
        return typeface is not null && string.Equals(typeface.FamilyName, family, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A plot with the report's fonts, sizes and grid, shared by every figure the program draws.</summary>
    internal static Plot NewPlot()
    {
        var plot = new Plot();
        if (FontName is not null)
            plot.Font.Set(FontName);
        plot.Axes.Title.Label.FontSize = TitleSize;
        plot.Axes.Title.Label.ForeColor = Ink;
        plot.Axes.Left.Label.FontSize = AxisLabelSize;
        plot.Axes.Bottom.Label.FontSize = AxisLabelSize;
        plot.Axes.Left.TickLabelStyle.FontSize = TickLabelSize;
        plot.Axes.Bottom.TickLabelStyle.FontSize = TickLabelSize;
        plot.Grid.MajorLineColor = Colors.Black.WithAlpha(0.1);
        if (FontName is not null) plot.Legend.FontName = FontName;
        return plot;
    }

    /// <summary>Keeps the points whose step and loss are both finite.</summary>
    private static (double[] Steps, double[] Losses) Finite(IEnumerable<double> steps, IEnumerable<double> losses)
    {
        var pairs = steps.Zip(losses).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToArray();
        return (pairs.Select(p => p.First).ToArray(), pairs.Select(p => p.Second).ToArray());
    }

    /// <summary>Widens [low, high] by <paramref name="fraction"/> of its span on each side, and gives a flat range some height.</summary>
    private static (double Low, double High) Padded(double low, double high, double fraction)
    {
        var span = high - low;
        if (span <= 0)
            span = Math.Max(Math.Abs(high) * 0.1, 0.01);
        return (low - span * fraction, high + span * fraction);
    }

    /// <summary>Whole steps only, with thousands separators.</summary>
    private static NumericAutomatic StepTicks() => new() { LabelFormatter = Thousands, IntegerTicksOnly = true };

    /// <summary>Tick labels with thousands separators, independent of the machine's culture.</summary>
    private static string Thousands(double value) => value.ToString("#,0.##", CultureInfo.InvariantCulture);

    /// <summary>Ticks for a log10-transformed axis covering the values <paramref name="low"/>..<paramref name="high"/>.</summary>
    /// <remarks>
    /// ScottPlot draws log axes as linear axes over log10 of the data, so ticks must be placed at log10 of round values
    /// and labelled with the values themselves. The label set gets denser until at least five ticks fall in range.
    /// </remarks>
    private static NumericManual LogTicks(double low, double high)
    {
        double[][] mantissaSets = [[1], [1, 2, 5], [1, 2, 3, 5], [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]];
        var firstDecade = (int)Math.Floor(Math.Log10(low));
        var lastDecade = (int)Math.Ceiling(Math.Log10(high));

        List<double> InRange(IEnumerable<double> mantissas) =>
            Enumerable.Range(firstDecade, lastDecade - firstDecade + 1)
                .SelectMany(d => mantissas.Select(m => m * Math.Pow(10, d)))
                .Where(v => v >= low && v <= high)
                .ToList();

        var major = mantissaSets.Select(InRange).FirstOrDefault(t => t.Count >= 5) ?? InRange(mantissaSets[^1]);
        var ticks = new NumericManual();
        foreach (var value in major)
            ticks.AddMajor(Math.Log10(value), value.ToString(value >= 1 ? "#,0.##" : "0.####", CultureInfo.InvariantCulture));
        foreach (var value in InRange([1, 2, 3, 4, 5, 6, 7, 8, 9]).Except(major))
            ticks.AddMinor(Math.Log10(value));
        return ticks;
    }
}
