using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace LlmEff.Export;

/// <summary>The value types of GGUF metadata, numbered as the format numbers them.</summary>
public enum GgufValueType : uint
{
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 0,

    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 1,

    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 2,

    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 3,

    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 4,

    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 5,

    /// <summary>IEEE 754 single precision.</summary>
    Float32 = 6,

    /// <summary>One byte, 0 or 1.</summary>
    Bool = 7,

    /// <summary>UTF-8 bytes after a u64 length, no terminator.</summary>
    String = 8,

    /// <summary>An element type, a u64 count, then the elements.</summary>
    Array = 9,

    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 10,

    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 11,

    /// <summary>IEEE 754 double precision.</summary>
    Float64 = 12,
}

/// <summary>
/// One typed GGUF metadata value. The type travels with the value because llama.cpp checks it: a key it reads as
/// u32 written as i64 fails to load. Equal when type and contents are equal (arrays element by element), so values
/// read back compare with values written.
/// </summary>
public sealed class GgufValue : IEquatable<GgufValue>
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The value's type.</summary>
    public GgufValueType Type { get; }

    /// <summary>The boxed number, bool or string; for an array, its elements (a <see cref="GgufValue"/>[]).</summary>
    public object Value { get; }

    /// <summary>For an array, the type of every element; otherwise meaningless.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The elements of an array value.</summary>
    public IReadOnlyList<GgufValue> Items => Type == GgufValueType.Array ? (GgufValue[])Value : throw new InvalidOperationException($"A {Type} value has no items.");

#pragma warning disable CS1591 // One factory per format type; each is named after the type it writes.
    public static GgufValue UInt8(byte value) => new(GgufValueType.UInt8, value);
    public static GgufValue Int8(sbyte value) => new(GgufValueType.Int8, value);
    public static GgufValue UInt16(ushort value) => new(GgufValueType.UInt16, value);
    public static GgufValue Int16(short value) => new(GgufValueType.Int16, value);
    public static GgufValue UInt32(uint value) => new(GgufValueType.UInt32, value);
    public static GgufValue Int32(int value) => new(GgufValueType.Int32, value);
    public static GgufValue Float32(float value) => new(GgufValueType.Float32, value);
    public static GgufValue Bool(bool value) => new(GgufValueType.Bool, value);
    public static GgufValue UInt64(ulong value) => new(GgufValueType.UInt64, value);
    public static GgufValue Int64(long value) => new(GgufValueType.Int64, value);
    public static GgufValue Float64(double value) => new(GgufValueType.Float64, value);
#pragma warning restore CS1591

    /// <summary>A string value (written as UTF-8).</summary>
    public static GgufValue String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(GgufValueType.String, value);
    }

    /// <summary>An array whose elements all have type <paramref name="elementType"/>.</summary>
    public static GgufValue Array(GgufValueType elementType, IEnumerable<GgufValue> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var elements = items.ToArray();
        var stranger = System.Array.FindIndex(elements, e => e.Type != elementType);
        if (stranger >= 0)
            throw new ArgumentException($"Element {stranger} of a GGUF array of {elementType} is a {elements[stranger].Type}: an array holds one type.", nameof(items));
        return new(GgufValueType.Array, elements, elementType);
    }

    /// <summary>An array of strings.</summary>
    public static GgufValue Array(IEnumerable<string> items) => Array(GgufValueType.String, items.Select(String));

    /// <inheritdoc/>
    public bool Equals(GgufValue? other) =>
        other is not null && other.Type == Type &&
        (Type == GgufValueType.Array ? other.ElementType == ElementType && ((GgufValue[])Value).SequenceEqual((GgufValue[])other.Value) : Value.Equals(other.Value));

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as GgufValue);

    /// <inheritdoc/>
    public override int GetHashCode() => Type == GgufValueType.Array ? HashCode.Combine(Type, ElementType, ((GgufValue[])Value).Length) : HashCode.Combine(Type, Value);

    /// <inheritdoc/>
    public override string ToString() => Type switch
    {
        GgufValueType.Array => $"{ElementType}[{((GgufValue[])Value).Length}]",
        GgufValueType.String => $"\"{Value}\"",
        _ => string.Create(CultureInfo.InvariantCulture, $"{Value} ({Type})"),
    };
}
