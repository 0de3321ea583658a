namespace PeftLab.Data;

/// <summary>
/// A piece of rendered training text. <see cref="Trainable"/> pieces (assistant replies and their end-of-turn marker,
/// or SuperNI targets) are the ones the loss is computed on; everything else is context only.
/// </summary>
public sealed record TextSegment(string Text, bool Trainable);
