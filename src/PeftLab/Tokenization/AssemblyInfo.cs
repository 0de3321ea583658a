using System.Runtime.CompilerServices;

// Tests compare the managed decoder with the native binding directly.
[assembly: InternalsVisibleTo("PeftLab.Tests")]
